"""The marks a rebuild gets back from the ledger: each fired-threshold key a call announced (its cost event's
`announced` tag) while its window lives, with the expiry its claim had; the current minute's throttled calls on
each per-minute throttle's counter; a call already on the store's counters keeps its marks but not its throttle
request; a call settled while the ledger was read gives its throttle request back. Then, through a governor on a
SQLite store and a SQLite ledger, a lost store re-announces nothing already announced and keeps the throttle's
minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.events.budget_events import BudgetExhausted, BudgetThresholdCrossed
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.store_events import BudgetStoreLost
from fiscus.governor import CallRequest, Governor
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.ledger.base import Ledger
from fiscus.meters import Amounts
from fiscus.policy import parse_policy
from fiscus.pricing.cost import Cost
from fiscus.stores import open_store
from fiscus.stores.rebuild import rebuild_from_ledger, rebuild_state
from fiscus.stores.rebuild_marks import ANNOUNCED_TAG, announced_keys, announced_tag
from fiscus.usage import Usage
from tests.governor._support import catalogue

NOW = datetime(2026, 6, 9, 15, 0, 30, tzinfo=UTC).timestamp()
MINUTE = int(NOW // 60)
POLICY = parse_policy(
    {
        "budgets": [
            {
                "name": "team-day",
                "scope": {"team": "growth"},
                "window": "day",
                "limit": {"usd": 10},
                "thresholds": [{"at": 0.5, "action": "warn"}, {"at": 0.8, "action": "throttle", "per_minute": 5}],
            },
            {
                "name": "per-user",
                "scope": {"user": "*"},
                "window": {"rolling": "2h", "buckets": 2},
                "limit": {"usd": 1},
                "thresholds": [{"at": 0.5, "action": "notify", "channel": "ops team"}],
            },
        ]
    }
)
DAY_WARN = "f:b:team-day|day:2026-06-09|0.5:warn"
END_OF_TOMORROW = datetime(2026, 6, 11, tzinfo=UTC).timestamp()


def event(
    at: float,
    *,
    announced: tuple[str, ...] = (),
    decision: str = "allow",
    status: CallStatus = CallStatus.OK,
    user: str = "u1",
    id: str | None = None,
) -> CostEvent:
    tags = {ANNOUNCED_TAG: announced_tag(announced)} if announced else {}
    kwargs = {"id": id} if id else {}
    return CostEvent(
        "openai",
        "gpt-4o-mini",
        "gpt-4o-mini",
        Usage(input_tokens=10, output_tokens=5),
        Cost(output=Decimal("0.01")),
        Attribution(team="growth", user=user),
        status,
        timestamp=datetime.fromtimestamp(at, UTC),
        decision=decision,
        tags=tags,
        **kwargs,
    )


def test_the_announced_tag_round_trips_any_key() -> None:
    keys = ("f:b:per-user|user=u%201|r7200p:123|0.5:notify:ops team", DAY_WARN)
    tag = announced_tag(keys)
    assert " " not in tag.replace(" f:", "") and tag.count(" ") == 1
    assert announced_keys(event(NOW, announced=keys)) == list(keys)


def test_fired_marks_come_back_while_their_window_lives() -> None:
    bucket = int((NOW - 600) // 3600)
    rolling = f"f:b:per-user|user=u1|r7200p:{bucket // 2}|0.5:notify:ops team"
    events = [
        event(NOW - 86_400, announced=("f:b:team-day|day:2026-06-08|0.5:warn",)),  # yesterday's: over
        event(NOW - 3600, announced=(DAY_WARN,)),
        event(NOW - 600, announced=(rolling,), status=CallStatus.BLOCKED),  # refused calls announce too
        event(NOW - 300, announced=("f:b:other|day:2026-06-09|0.5:warn",)),  # no budget of this policy
    ]
    marks = rebuild_state(POLICY, events, now=NOW).marks
    assert marks == {
        DAY_WARN: (Amounts(requests=1), END_OF_TOMORROW),  # as the claim: the window's end + a day
        rolling: (Amounts(requests=1), float((bucket + 2) * 3600)),  # its bucket's drop, as the claim had
    }


def test_throttle_counters_count_this_minutes_throttled_calls() -> None:
    events = [
        event(NOW - 61, decision="throttle"),  # the minute before
        event(NOW - 20, decision="throttle"),
        event(NOW - 10, decision="throttle", id="on-the-store", announced=(DAY_WARN,)),
        event(NOW - 5, decision="throttle", status=CallStatus.BLOCKED),  # throttled out: held nothing
        event(NOW - 2, decision="warn"),
        event(NOW - 1, decision="throttle"),
    ]
    marks = rebuild_state(POLICY, events, now=NOW, exclude={"on-the-store"}).marks
    assert marks == {
        f"t:b:team-day|{MINUTE}": (Amounts(requests=2), float((MINUTE + 2) * 60)),
        DAY_WARN: (Amounts(requests=1), END_OF_TOMORROW),  # the call is on the counters; its claim may not be
    }


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    yield opened
    opened.close()


def test_a_throttled_call_settled_while_the_ledger_is_read_counts_once(ledger: Ledger) -> None:
    ledger.append([event(NOW - 20, decision="throttle"), event(NOW - 10, decision="throttle", id="racing")])
    answers = iter([set(), {"racing"}])
    marks = rebuild_from_ledger(POLICY, ledger, now=NOW, lost_ids=lambda: next(answers)).marks
    assert marks == {f"t:b:team-day|{MINUTE}": (Amounts(requests=1), float((MINUTE + 2) * 60))}


# -- through a governor ---------------------------------------------------------------------------------------

T0 = datetime(2026, 6, 9, 15, 0, 5, tzinfo=UTC).timestamp()
# $0.004 a call on $0.04: warn from the 4th call, throttle to 2 calls a minute from the 6th.
GOVERNED = {
    "budgets": [
        {
            "name": "team-day",
            "scope": {"team": "growth"},
            "window": "day",
            "limit": {"usd": "0.04"},
            "thresholds": [
                {"at": 0.25, "action": "warn"},
                {"at": 0.5, "action": "throttle", "per_minute": 2},
                {"at": 1.0, "action": "block"},
            ],
        }
    ],
    "estimate_margin": 0,
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def gateway_worker(store_url: str, ledger: Ledger, clock: Clock) -> tuple[Governor, list[object]]:
    """A governor as a gateway worker starts one: no local memory of what was announced."""
    store = open_store(store_url, guarded=True)
    events: list[object] = []
    gov = Governor(
        policy=parse_policy(GOVERNED),
        store=store,
        catalogue=catalogue(),
        ledger=LedgerWriter(ledger, outbox=store, flush_interval=0.01),
        clock=clock,
        on_event=events.append,
        on_store_loss="rebuild",
    )
    gov.guard.start()
    return gov, events


def call(gov: Governor) -> bool:
    request = CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=100, max_tokens=100
    )
    admission = gov.admit(request)
    served = admission.decision.calls_model
    gov.settle(admission, Usage(input_tokens=100, output_tokens=100) if served else None)
    return served


def announced(events: list[object]) -> list[str]:
    return [
        f"{e.threshold}:{e.action}" if isinstance(e, BudgetThresholdCrossed) else "exhausted"
        for e in events
        if isinstance(e, BudgetThresholdCrossed | BudgetExhausted)
    ]


def test_a_lost_store_re_announces_nothing_and_keeps_the_throttles_minute(ledger: Ledger, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/budgets.db"
    clock = Clock()
    first, heard = gateway_worker(url, ledger, clock)
    assert [call(first) for _ in range(8)] == [True] * 7 + [False]  # the 8th: over 2 throttled calls this minute
    assert announced(heard) == ["0.25:warn", "0.5:throttle"]
    assert first.ledger.flush(5)  # type: ignore[union-attr]
    first.close()
    with open_store(url)._transaction() as db:  # type: ignore[attr-defined]  # the counters table emptied
        db.execute("DELETE FROM fiscus_counters")

    again, heard = gateway_worker(url, ledger, clock)  # a worker that meets the loss, or a restart
    assert [type(e) for e in heard] == [BudgetStoreLost]
    assert "2 thresholds already announced and 1 throttle counters kept" in heard[0].message  # type: ignore[attr-defined]
    assert call(again) is False  # the minute's two throttled calls still count
    clock.now += 60
    assert [call(again) for _ in range(3)] == [True, True, False]  # a new minute: two more
    assert announced(heard) == []  # warn and throttle were announced before the loss: not again
    clock.now += 60
    assert [call(again) for _ in range(2)] == [True, False]  # $0.04: the day is spent, the next call blocked
    assert announced(heard) == ["1.0:block"]  # the one threshold not reached before the loss
    assert again.ledger.flush(5)  # type: ignore[union-attr]
    spent = sum(e.cost.total for e in ledger.events())
    assert spent == Decimal("0.040")
    again.close()
