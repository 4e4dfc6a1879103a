"""A comparable form of ledger answers, for tests that check a fast path against a scan."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fiscus.ledger import Ledger, SpendQuery
from fiscus.ledger.cases import Rank


def comparable(value: Any) -> Any:
    """Decimals normalized, collections sorted, slotted objects as the tuple of their slots."""
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, dict):
        return sorted((repr(k), comparable(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sorted((comparable(v) for v in value), key=repr)
    if hasattr(value, "__slots__"):
        return tuple(comparable(getattr(value, name)) for name in value.__slots__)
    return value


def assert_ranks_equal_a_scan(led: Ledger, q: SpendQuery, sets: Sequence[tuple[str, ...]], ranks: Sequence[Rank],
                              run_keys: Sequence[str] = ("task_class", "agent")) -> None:  # fmt: skip
    """Case ranks of `q` for `sets` (with and without the single-call cases), and run statistics per each of
    `run_keys` in `q`'s window, equal to the same answers scanned from the events."""
    for alone in (True, False):
        fast = led.case_ranks(q, sets, ranks, singles=alone)
        assert comparable(fast) == comparable(led.case_ranks(q, sets, ranks, scan=True, singles=alone)), (q, alone)
    for key in run_keys:
        runs = SpendQuery(by=(key,), since=q.since, until=q.until, where=q.where)
        assert comparable(led.run_stats(runs, ranks)) == comparable(led.run_stats(runs, ranks, scan=True)), runs
