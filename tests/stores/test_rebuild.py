"""Rebuilding counters from the ledger: each budget instance's live window sums its events exactly (calendar,
rolling buckets, sessions, per-value scopes); past windows, refused calls and the calls already on the store's
counters count nothing; a call settled and moved to the ledger while the rebuild read it is taken out again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import open_ledger
from fiscus.ledger.base import Ledger
from fiscus.meters import Amounts
from fiscus.policy import parse_policy
from fiscus.pricing.cost import Cost
from fiscus.stores.rebuild import rebuild_counters, rebuild_from_ledger
from fiscus.usage import Usage

NOW = datetime(2026, 6, 9, 15, 0, tzinfo=UTC).timestamp()
POLICY = parse_policy(
    {
        "budgets": [
            {"name": "team-day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 10}},
            {"name": "per-user", "scope": {"user": "*"}, "window": "day", "limit": {"usd": 1}},
            {
                "name": "hourly",
                "scope": {"team": "growth"},
                "window": {"rolling": "2h", "buckets": 2},
                "limit": {"usd": 5},
            },
            {"name": "per-session", "scope": {}, "window": "session", "limit": {"usd": 3}},
        ]
    }
)


def event(
    at: float,
    usd: str,
    *,
    user: str = "u1",
    status: CallStatus = CallStatus.OK,
    session: str | None = None,
    id: str | None = None,
) -> CostEvent:
    kwargs = {"id": id} if id else {}
    return CostEvent(
        "openai",
        "gpt-4o-mini",
        "gpt-4o-mini",
        Usage(input_tokens=10, output_tokens=5),
        Cost(output=Decimal(usd)),
        Attribution(team="growth", user=user, session=session),
        status,
        timestamp=datetime.fromtimestamp(at, UTC),
        **kwargs,
    )


def test_each_live_window_sums_its_events() -> None:
    events = [
        event(NOW - 30 * 3600, "0.5"),  # yesterday: no live window but its session
        event(NOW - 3 * 3600, "0.25", user="u2"),  # today, before the rolling window's buckets
        event(NOW - 1800, "0.125", session="s1"),
        event(NOW - 60, "0.0000000011"),  # 1.1 nano-dollars: rounded up to 2, as the settle does
        event(NOW - 10, "0", status=CallStatus.BLOCKED),  # refused: held nothing
        event(NOW - 5, "0.0625", id="already-on-counters"),
    ]
    figures = rebuild_counters(POLICY, events, now=NOW, exclude={"already-on-counters"})
    spent = {key: amounts for key, (amounts, _) in figures.items()}
    bucket = int(NOW // 3600)
    assert spent == {
        "b:team-day|day:2026-06-09": Amounts(375_000_002, 45, 3),
        "b:per-user|user=u1|day:2026-06-09": Amounts(125_000_002, 30, 2),
        "b:per-user|user=u2|day:2026-06-09": Amounts(250_000_000, 15, 1),
        f"b:hourly|r7200:{bucket - 1}": Amounts(125_000_002, 30, 2),  # 14:30 and 14:59; 12:00 dropped out
        "b:per-session|session:s1": Amounts(125_000_000, 15, 1),
    }
    assert figures["b:team-day|day:2026-06-09"][1] == datetime(2026, 6, 11, tzinfo=UTC).timestamp()  # end + 1 day


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    yield opened
    opened.close()


def test_a_call_settled_while_the_ledger_is_read_counts_once(ledger: Ledger) -> None:
    ledger.append([event(NOW - 100, "1"), event(NOW - 50, "2", id="racing")])
    answers = iter([set(), {"racing"}])  # the lost set before the read, and after it: "racing" settled meanwhile

    figures = rebuild_from_ledger(POLICY, ledger, now=NOW, lost_ids=lambda: next(answers)).counters
    assert figures["b:team-day|day:2026-06-09"][0] == Amounts(1_000_000_000, 15, 1)  # "racing" is on the counters
