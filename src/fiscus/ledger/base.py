"""The ledger interface: every `CostEvent`, kept once per id, and the spend questions reports ask of it."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import TYPE_CHECKING

from fiscus.attribution import DIMENSIONS
from fiscus.errors import StoreError
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.events.policy_event import PolicyEvent
from fiscus.events.savings import Savings
from fiscus.ledger.chain import ChainedRow, ChainHead

if TYPE_CHECKING:
    from fiscus.ledger.cases import CaseRanks, CaseTally, Rank, RunStats

# What a spend query can group and filter by: every attribution dimension plus these call facts.
CALL_KEYS: tuple[str, ...] = ("provider", "served_model", "requested_model", "status")
GROUP_KEYS: tuple[str, ...] = (*DIMENSIONS, *CALL_KEYS, "day", "hour")
FILTER_KEYS: tuple[str, ...] = (*DIMENSIONS, *CALL_KEYS)
# Sums of money never round: 60 significant digits hold any realistic total at any sub-unit precision.
MONEY_CONTEXT = Context(prec=60)
_PICO = Decimal("1E-12")
# Friendlier names a user may type; `model` is what answered the call.
KEY_ALIASES: dict[str, str] = {"model": "served_model"}


def resolve_key(name: str, *, allowed: tuple[str, ...] = GROUP_KEYS) -> str:
    """A group or filter key in its canonical spelling; `StoreError` names the known keys when it is unknown."""
    key = KEY_ALIASES.get(name.strip(), name.strip())
    if key not in allowed:
        known = ", ".join(sorted({*allowed, *(a for a, k in KEY_ALIASES.items() if k in allowed)}))
        raise UnknownDimensionError(f"unknown dimension {name!r}; known: {known}")
    return key


class UnknownDimensionError(StoreError):
    """A spend query named a dimension the ledger does not keep."""


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """Spend grouped by `by` (in that order) over events with `since <= timestamp < until` matching `where`."""

    by: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    where: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by = tuple(resolve_key(name) for name in self.by)
        if len(set(by)) != len(by):
            raise UnknownDimensionError(f"a dimension is repeated in {', '.join(self.by)}")
        object.__setattr__(self, "by", by)
        where = {resolve_key(k, allowed=FILTER_KEYS): v for k, v in self.where.items()}
        object.__setattr__(self, "where", where)


@dataclass(slots=True)
class SpendRow:
    """Totals of one group. Token counts follow `Usage`: `input_tokens` is uncached input only and
    `output_tokens` includes `reasoning_tokens`. `outcomes` counts events per outcome label."""

    group: dict[str, str | None]
    requests: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    input_usd: Decimal = Decimal(0)
    cache_read_usd: Decimal = Decimal(0)
    cache_write_usd: Decimal = Decimal(0)
    output_usd: Decimal = Decimal(0)
    tools_usd: Decimal = Decimal(0)  # server-side tool fees (web searches, ...)
    estimated_events: int = 0
    fallback_price_events: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    # Over the events that record it: what they would have cost ungoverned, and the saving per lever.
    ungoverned_usd: Decimal = Decimal(0)
    saved: Savings = field(default_factory=Savings)

    @property
    def total_usd(self) -> Decimal:
        add = MONEY_CONTEXT.add
        parts = add(add(self.input_usd, self.cache_read_usd), add(self.cache_write_usd, self.output_usd))
        return add(parts, self.tools_usd)

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def cache_hit_rate(self) -> Decimal:
        """Share of all input tokens read from cache; 0 when there was no input."""
        total = self.total_input_tokens
        return Decimal(self.cache_read_tokens) / Decimal(total) if total else Decimal(0)

    def cost_per_outcome(self) -> dict[str, Decimal]:
        """The group's whole spend divided by how many events reached each outcome, to the pico-dollar
        (a quotient has no exact decimal form in general; sums stay exact)."""
        total = self.total_usd
        return {
            label: MONEY_CONTEXT.divide(total, Decimal(count)).quantize(_PICO, context=MONEY_CONTEXT)
            for label, count in sorted(self.outcomes.items())
            if count
        }

    def add_money(
        self, input_usd: Decimal, cache_read: Decimal, cache_write: Decimal, output: Decimal, tools: Decimal
    ) -> None:
        add = MONEY_CONTEXT.add
        self.tools_usd = add(self.tools_usd, tools)
        self.input_usd = add(self.input_usd, input_usd)
        self.cache_read_usd = add(self.cache_read_usd, cache_read)
        self.cache_write_usd = add(self.cache_write_usd, cache_write)
        self.output_usd = add(self.output_usd, output)

    @property
    def saved_rate(self) -> Decimal:
        """Share of the ungoverned cost saved; 0 when no event recorded one."""
        total = self.ungoverned_usd
        return MONEY_CONTEXT.divide(self.saved.total, total) if total else Decimal(0)

    @property
    def refused(self) -> int:
        """Calls refused or answered partially: work not done, never counted as a saving."""
        return self.statuses.get("blocked", 0) + self.statuses.get("partial", 0)

    def add_savings(self, ungoverned: Decimal, saved: Savings) -> None:
        self.ungoverned_usd = MONEY_CONTEXT.add(self.ungoverned_usd, ungoverned)
        self.saved.add(saved)

    def merge(self, other: SpendRow) -> None:
        """Add `other`'s totals into this row (used for the totals line)."""
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.add_money(other.input_usd, other.cache_read_usd, other.cache_write_usd, other.output_usd, other.tools_usd)
        self.add_savings(other.ungoverned_usd, other.saved)
        self.estimated_events += other.estimated_events
        self.fallback_price_events += other.fallback_price_events
        for label, count in other.statuses.items():
            self.statuses[label] = self.statuses.get(label, 0) + count
        for label, count in other.outcomes.items():
            self.outcomes[label] = self.outcomes.get(label, 0) + count


@dataclass(slots=True)
class SessionSpend:
    """One session's calls in one group of a query (`session` None: the calls outside any session, together)
    with one outcome label (None: calls without one). `first` is the earliest call's time."""

    group: dict[str, str | None]
    session: str | None
    outcome: str | None
    calls: int
    tokens: int
    cost: Decimal
    first: datetime


def event_key(event: CostEvent, key: str) -> str | None:
    """The value of a group or filter key (canonical spelling) on one event."""
    if key in DIMENSIONS:
        value: str | None = getattr(event.attribution, key)
        return value
    if key == "status":
        return str(event.status)
    if key in ("day", "hour"):
        at = event.timestamp.astimezone(UTC) if event.timestamp.tzinfo else event.timestamp
        return at.strftime("%Y-%m-%d" if key == "day" else "%Y-%m-%dT%H")
    value = getattr(event, key)
    return value


def cost_total(event: CostEvent) -> Decimal:
    """An event's cost, summed exactly (as the ledger's spend sums are)."""
    c, add = event.cost, MONEY_CONTEXT.add
    return add(add(add(c.input, c.cache_read), add(c.cache_write_5m, c.cache_write_1h)), add(c.output, c.tools))


def sort_rows(rows: list[SpendRow], by: Sequence[str]) -> list[SpendRow]:
    """Days (and hours) in calendar order, then the most expensive groups first, then by name for a stable order."""

    def key(row: SpendRow) -> tuple[object, ...]:
        day = row.group.get("day") or "" if "day" in by else ""
        hour = row.group.get("hour") or "" if "hour" in by else ""
        names = tuple(row.group.get(k) or "" for k in by)
        return (day, hour, -row.total_usd, names)

    return sorted(rows, key=key)


def regroup(rows: Iterable[SpendRow], by: Sequence[str]) -> list[SpendRow]:
    """Rows of a finer grouping summed into the groups of `by` (a subset of their keys), in `sort_rows` order:
    the answer of the same spend query grouped by `by`, without asking the ledger again."""
    found: dict[tuple[str | None, ...], SpendRow] = {}
    for row in rows:
        key = tuple(row.group.get(k) for k in by)
        have = found.get(key)
        if have is None:
            have = found[key] = SpendRow(group=dict(zip(by, key, strict=True)))
        have.merge(row)
    return sort_rows(list(found.values()), by)


def subtract(rows: Iterable[SpendRow], minus: Iterable[SpendRow], by: Sequence[str]) -> list[SpendRow]:
    """`rows` less `minus` (the spend of a part of their window, grouped alike), in `sort_rows` order: a group,
    status or outcome left with no call is gone, as in the answer for the rest of the window."""
    found = {tuple(r.group.get(k) for k in by): r for r in rows}
    for row in minus:
        key = tuple(row.group.get(k) for k in by)
        have = found.setdefault(key, SpendRow(group=dict(row.group)))
        negative = SpendRow(
            group=row.group, requests=-row.requests, input_tokens=-row.input_tokens,
            cache_read_tokens=-row.cache_read_tokens, cache_write_tokens=-row.cache_write_tokens,
            output_tokens=-row.output_tokens, reasoning_tokens=-row.reasoning_tokens, input_usd=-row.input_usd,
            cache_read_usd=-row.cache_read_usd, cache_write_usd=-row.cache_write_usd, output_usd=-row.output_usd,
            tools_usd=-row.tools_usd, estimated_events=-row.estimated_events,
            fallback_price_events=-row.fallback_price_events,
            statuses={k: -v for k, v in row.statuses.items()}, outcomes={k: -v for k, v in row.outcomes.items()},
            ungoverned_usd=-row.ungoverned_usd,
            saved=Savings(**{lever: -amount for lever, amount in row.saved.by_lever().items()}),
        )  # fmt: skip
        have.merge(negative)
    out = []
    for row in found.values():
        if row.requests:
            row.statuses = {k: v for k, v in row.statuses.items() if v}
            row.outcomes = {k: v for k, v in row.outcomes.items() if v}
            out.append(row)
    return sort_rows(out, by)


def session_order(s: SessionSpend) -> tuple[object, ...]:
    return (s.first, s.session or "", s.outcome or "", tuple(v or "" for v in s.group.values()))


class Ledger(abc.ABC):
    """Append-only store of cost events; every row is linked into its writer's audit chain
    (`fiscus.ledger.chain`), so rows are never updated in place. Implementations: `SqliteLedger`
    (sqlite:///path), `PostgresLedger` (postgresql://…); open one with `fiscus.ledger.open_ledger(url)`.
    Every method is thread-safe."""

    url: str

    @abc.abstractmethod
    def append(self, events: Sequence[CostEvent]) -> int:
        """Keep these events; an id already kept (or repeated in the batch) is skipped, so a retried write never
        counts twice. Returns how many events were new. All or nothing per call."""

    @abc.abstractmethod
    def get(self, event_id: str) -> CostEvent | None:
        """The event with this id, or None."""

    @abc.abstractmethod
    def events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[str, str] | None = None,
    ) -> Iterator[CostEvent]:
        """Events with `since <= timestamp < until` matching `where`, oldest first, read page by page."""

    @abc.abstractmethod
    def spend(self, query: SpendQuery, *, scan: bool = False) -> list[SpendRow]:
        """One row per group of `query.by` (one row in all when `by` is empty and any event matched). Whole
        hours and days come from the rollups when the query's keys allow; `scan=True` reads the events only
        (the baseline the rollups are checked and measured against)."""

    def session_spend(self, query: SpendQuery, *, scan: bool = False, outcomes: bool = True) -> list[SessionSpend]:
        """Per (group of `query.by`, session, outcome): calls, tokens, cost and first call, oldest first; without
        `outcomes`, per (group, session) with outcome None. SQL ledgers read whole hours from the session
        rollup when the keys allow; this default reads the events."""
        found: dict[tuple[str | None, ...], SessionSpend] = {}
        by = query.by
        for e in self.events(since=query.since, until=query.until):
            if any(event_key(e, k) != v for k, v in query.where.items()):
                continue
            group = tuple(event_key(e, k) for k in by)
            label = e.attribution.outcome if outcomes or "outcome" in by else None
            key = (*group, e.attribution.session, label)
            have = found.get(key)
            if have is None:
                a = e.attribution
                found[key] = SessionSpend(
                    dict(zip(by, group, strict=True)), a.session, label, 1, e.usage.total_tokens, cost_total(e),
                    e.timestamp,
                )  # fmt: skip
                continue
            have.calls += 1
            have.tokens += e.usage.total_tokens
            have.cost = MONEY_CONTEXT.add(have.cost, cost_total(e))
            have.first = min(have.first, e.timestamp)
        return sorted(found.values(), key=session_order)

    def single_calls(
        self, *, since: datetime | None = None, until: datetime | None = None, where: Mapping[str, str] | None = None
    ) -> Iterator[CostEvent]:
        """The events outside any session (each a case or run of its own), oldest first."""
        return (e for e in self.events(since=since, until=until, where=where) if e.attribution.session is None)

    def tagged_spend(self, query: SpendQuery, tag: str, value: str) -> list[SpendRow]:
        """`spend(query)` over only the events whose tag `tag` is `value` (e.g. degraded=budget), read from the
        events themselves: no rollup keeps tags."""
        raise NotImplementedError

    # Per-case aggregates (`fiscus.ledger.cases`): SQL ledgers answer them inside the database; these defaults,
    # and `scan=True`, answer them from `session_spend` and the calls outside sessions.

    def case_tallies(self, query: SpendQuery, *, scan: bool = False) -> list[CaseTally]:
        """Cases per (group of `query.by`, outcome): how many and what they cost."""
        from fiscus.ledger.cases import tallies_from

        return tallies_from(self, query, scan=scan)

    def case_ranks(
        self,
        query: SpendQuery,
        sets: Sequence[tuple[str, ...]],
        ranks: Sequence[Rank],
        *,
        scan: bool = False,
        singles: bool = True,
    ) -> list[CaseRanks]:
        """Per set of keys (subsets of `query.by`) and group: the cases and their cost at each rank (without
        `singles`: the sessions only)."""
        from fiscus.ledger.cases import ranks_from

        return ranks_from(self, query, sets, ranks, scan=scan, singles=singles)

    def run_stats(self, query: SpendQuery, ranks: Sequence[Rank], *, scan: bool = False) -> list[RunStats]:
        """Per group of the one key `query.by`: the runs, their totals and cost, tokens and calls at each rank."""
        from fiscus.ledger.cases import runs_from

        return runs_from(self, query, ranks, scan=scan)

    def session_costs(
        self, query: SpendQuery, sessions: Iterable[str], *, scan: bool = False
    ) -> dict[tuple[tuple[str | None, ...], str], Decimal]:
        """The cost of each of `sessions` per group of `query.by` in the window."""
        from fiscus.ledger.cases import costs_from

        return costs_from(self, query, sessions, scan=scan)

    @abc.abstractmethod
    def record_policy(self, event: PolicyEvent) -> bool:
        """Keep a policy event in this writer's audit chain; False when its id was kept before."""

    @abc.abstractmethod
    def policy_events(self, *, since: datetime | None = None, until: datetime | None = None) -> list[PolicyEvent]:
        """Policy events with `since <= timestamp < until`, oldest first."""

    @abc.abstractmethod
    def chain_heads(self) -> list[ChainHead]:
        """The newest link of every writer's chain."""

    @abc.abstractmethod
    def chained_rows(self, table: str) -> Iterator[ChainedRow]:
        """Every row of `table` ("cost_events" or "policy_events") with its chain columns, in (chain, seq)
        order, then any rows with no chain link; for `fiscus.audit.verify`."""

    @abc.abstractmethod
    def record_outcomes(self, records: Sequence[OutcomeRecorded]) -> int:
        """Keep these session outcomes (idempotent per id, like `append`); how many were new."""

    @abc.abstractmethod
    def outcomes(self, sessions: Iterable[str]) -> dict[str, str]:
        """The latest recorded outcome of each of `sessions` that has one."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The migration the database is at."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
