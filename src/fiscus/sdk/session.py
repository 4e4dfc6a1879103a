"""Agent sessions: attribution, a spend ceiling and a step limit for one agent run, nested via contextvars.

A session is one case (a ticket, a lead): `session.outcome = "resolved"` attaches what it achieved, after or
between its calls, and the ledger keeps it for cost per outcome per case. How the session ended for fiscus
(`completed`, `error`, `ceiling`, `loop`…) is `ended_as`; `outcome` reads that until one is attached.

A subagent's session opened inside its parent's becomes its child: its calls carry `parent_session`, its
spend counts in every ancestor, and it can never spend past any ancestor's remaining ceiling. Ceilings are
enforced before a call, by reserving the call's worst-case cost in the whole chain (released at settle).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from decimal import Decimal
from types import TracebackType
from typing import Any

from fiscus.attribution import Attribution
from fiscus.events.guard_events import SessionEnded
from fiscus.events.outcome_event import OutcomeRecorded, check_outcome_label
from fiscus.guards.loops import LoopConfig, LoopDetector

log = logging.getLogger("fiscus.sdk")
_current: ContextVar[Session | None] = ContextVar("fiscus_session", default=None)
_lock = threading.RLock()  # session counters across threads and tasks; held for microseconds
_listeners: list[Callable[[object], None]] = []


def current_session() -> Session | None:
    return _current.get()


def add_listener(listener: Callable[[object], None]) -> None:
    """Receive every `SessionEnded` (and other SDK guard events) emitted in this process."""
    _listeners.append(listener)


def remove_listener(listener: Callable[[object], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def emit(event: object, governor: object | None = None) -> None:
    # The governor's own hook (its constructor's `on_event`), so notifiers see SDK events with budget events.
    hook = getattr(governor, "on_event", None) if governor else None
    for target in (*_listeners, *((hook,) if callable(hook) else ())):
        try:
            target(event)
        except Exception:  # a listener's failure must not break the agent
            log.exception("fiscus event listener failed")


class Session:
    """Use as `with fiscus.session(...) as s:` or `async with`. Live: `cost`, `tokens`, `steps`, `partial`."""

    def __init__(
        self,
        *,
        agent: str | None = None,
        workflow: str | None = None,
        team: str | None = None,
        task_class: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        environment: str | None = None,
        ceiling_usd: Decimal | float | int | str | None = None,
        max_steps: int | None = None,
        loops: LoopConfig | None = None,
        session_id: str | None = None,
        governor: object | None = None,
    ) -> None:
        self.id = session_id or f"s-{uuid.uuid4().hex[:16]}"
        self.dimensions = {
            "agent": agent,
            "workflow": workflow,
            "team": team,
            "task_class": task_class,
            "tenant": tenant,
            "user": user,
            "environment": environment,
        }
        self.ceiling_usd = None if ceiling_usd is None else Decimal(str(ceiling_usd))
        self.max_steps = max_steps
        self.governor = governor
        # Without `loops`, the checks of the governor's fiscus.yaml (`guards.loops`) when it sets them; a
        # session opened before its governor is known takes them from the first client that calls in it.
        self._loops_given = loops is not None
        if loops is None and governor is not None:
            from fiscus.sdk.runtime import loops_for

            loops = loops_for(governor)
            self._loops_given = loops is not None
        self.detector = LoopDetector(self._with_steps(loops or LoopConfig()))
        self.parent: Session | None = None
        self.cost = Decimal(0)
        self.tokens = 0
        self.steps = 0
        self.reserved = Decimal(0)
        self.partial = False
        self.ended_as: str | None = None  # why fiscus stopped it, or how its block ended
        self.reported_outcome: str | None = None  # what the case achieved, as attached by the caller
        self.calls_governor: object | None = None  # the governor that settled its calls (its ledger)
        self.reason = ""
        self._token: Token[Session | None] | None = None
        self._attributions: dict[int, tuple[Attribution, Attribution]] = {}

    def _with_steps(self, config: LoopConfig) -> LoopConfig:
        if self.max_steps is None:
            return config
        return LoopConfig(**{**_fields(config), "max_steps": self.max_steps})

    def default_loops(self, config: LoopConfig) -> None:
        """Run with `config` (a config file's `guards.loops`) unless this session was given checks of its own."""
        if self._loops_given:
            return
        self._loops_given = True
        if self.detector.steps == 0:
            self.detector = LoopDetector(self._with_steps(config))

    # --- nesting ----------------------------------------------------------------------------------------------

    @property
    def agent(self) -> str | None:
        return self.dimensions["agent"] or (self.parent.agent if self.parent else None)

    def chain(self) -> list[Session]:
        """This session and its ancestors, innermost first."""
        out: list[Session] = []
        node: Session | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def attribution_values(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for node in reversed(self.chain()):  # outer first, so the innermost session wins
            values.update({k: v for k, v in node.dimensions.items() if v is not None})
        values["session"] = self.id
        values["parent_session"] = self.parent.id if self.parent else None
        return values

    def attribution_for(self, base: Attribution) -> Attribution:
        """`base` refined with this session's values; kept per base object (one refine per client and session,
        not per call). The chain is fixed once the session is entered, so the refined value is too."""
        cached = self._attributions.get(id(base))
        if cached is not None and cached[0] is base:
            return cached[1]
        refined = base.refine(**self.attribution_values())
        if len(self._attributions) >= 64:  # per-call attributions (a framework's agent names): keep it small
            self._attributions.clear()
        self._attributions[id(base)] = (base, refined)  # holding `base` keeps its id from being reused
        return refined

    # --- ceiling -----------------------------------------------------------------------------------------------

    def remaining(self) -> Decimal | None:
        """What may still be committed here: the tightest of every ceiling in the chain (None: unbounded)."""
        with _lock:
            room = [n.ceiling_usd - n.cost - n.reserved for n in self.chain() if n.ceiling_usd is not None]
        return min(room) if room else None

    def reserve(self, amount: Decimal) -> bool:
        """Hold `amount` in every session of the chain, if each has room for it."""
        with _lock:
            chain = self.chain()
            for n in chain:
                if n.ceiling_usd is not None and n.cost + n.reserved + amount > n.ceiling_usd:
                    return False
            for n in chain:
                n.reserved += amount
            return True

    def settle(self, reserved: Decimal, cost: Decimal, tokens: int, *, step: bool = True) -> None:
        with _lock:
            for n in self.chain():
                n.reserved -= reserved
                n.cost += cost
                n.tokens += tokens
                if step:
                    n.steps += 1

    def stop(self, outcome: str, reason: str) -> None:
        """End the session's spending: later calls get a partial answer (or raise) without reaching a model."""
        if self.ended_as is None:
            self.ended_as, self.reason = outcome, reason
        self.partial = True

    @property
    def stopped(self) -> bool:
        return any(n.ended_as is not None for n in self.chain())

    @property
    def outcome(self) -> str | None:
        """What the case achieved once attached (`session.outcome = "resolved"`), else how it ended."""
        return self.reported_outcome or self.ended_as

    @outcome.setter
    def outcome(self, label: str) -> None:
        """Attach an outcome: recorded in the ledger of the governor that settled this session's calls (the
        latest one attached counts). It never stops the session."""
        self.reported_outcome = check_outcome_label(label)
        governor = next((g for n in self.chain() for g in (n.governor, n.calls_governor) if g is not None), None)
        if governor is None:
            from fiscus.sdk.runtime import default_governor

            governor = default_governor()
        ledger = getattr(governor, "ledger", None)
        if ledger is None:
            log.warning("fiscus: session %s: outcome %r not recorded (its governor keeps no ledger)", self.id, label)
            return
        values = self.attribution_values()
        ledger.submit(
            OutcomeRecorded(
                session=self.id,
                outcome=self.reported_outcome,
                source="sdk",
                agent=values.get("agent"),
                workflow=values.get("workflow"),
                task_class=values.get("task_class"),
            )
        )

    def state(self) -> dict[str, Any]:
        """JSON-safe state, for `BudgetExhausted` and post-mortems."""
        return {
            "session": self.id,
            "parent_session": self.parent.id if self.parent else None,
            **{k: v for k, v in self.dimensions.items() if v is not None},
            "cost_usd": format(self.cost, "f"),
            "reserved_usd": format(self.reserved, "f"),
            "ceiling_usd": None if self.ceiling_usd is None else format(self.ceiling_usd, "f"),
            "tokens": self.tokens,
            "steps": self.steps,
            "partial": self.partial,
            "outcome": self.outcome,
            "ended_as": self.ended_as,
            "reason": self.reason,
            "loops": self.detector.snapshot(),
        }

    # --- context manager -----------------------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self.parent = _current.get()
        self._attributions.clear()  # the chain (and so the values) may differ from a previous entry
        if self.governor is None and self.parent is not None:
            self.governor = self.parent.governor
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if self.ended_as is None:
            if exc is not None:
                self.ended_as, self.reason = "error", f"{type(exc).__name__}: {exc}"[:300]
            else:
                self.ended_as, self.reason = "completed", "the session's block finished"
        emit(self.summary(), self.governor)

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ):
        self.__exit__(exc_type, exc, tb)

    def summary(self) -> SessionEnded:
        return SessionEnded(
            session=self.id,
            parent_session=self.parent.id if self.parent else None,
            agent=self.agent,
            workflow=self.dimensions["workflow"],
            outcome=self.outcome or "open",
            reason=self.reason,
            cost=self.cost,
            tokens=self.tokens,
            steps=self.steps,
            ceiling_usd=self.ceiling_usd,
        )


def _fields(config: LoopConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in LoopConfig.__slots__}


def session(**kwargs: Any) -> Session:
    """`fiscus.session(agent=..., workflow=..., ceiling_usd=2, max_steps=40)`; see `Session`."""
    return Session(**kwargs)
