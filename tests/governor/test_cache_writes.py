"""The worst case knows about cache writes: a request that cannot write cache reserves at the dearest plain input
price; one that may write it, at the dearest cache-write price. Whatever was reserved, settle records what the
provider billed, over the reservation and over the limit alike."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from fiscus.attribution import Attribution
from fiscus.engine.ports import Amounts
from fiscus.governor import CallRequest, Governor
from fiscus.money import to_nanos
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store
from fiscus.stores.base import BudgetStore
from fiscus.usage import Usage

from ._support import Clock, ListLedger

ATTR = Attribution(team="growth")
SONNET = "claude-sonnet-4-5"  # input $3/M, $6/M past 200k; 1 h cache writes $6/M, $12/M past 200k; output $15/$22.5


def make(store: BudgetStore, usd: str = "100", lease_seconds: float = 120.0) -> tuple[Governor, Clock, ListLedger]:
    policy = parse_policy({"budgets": [{"name": "team", "scope": {"team": "growth"}, "limit": {"usd": usd}}]})
    clock, ledger = Clock(), ListLedger()
    governor = Governor(
        policy=policy,
        store=store,
        catalogue=PriceCatalogue(),
        ledger=ledger,
        clock=clock,
        lease_seconds=lease_seconds,
    )
    return governor, clock, ledger


def call(provider: str = "anthropic", model: str = SONNET, **kw: object) -> CallRequest:
    kw.setdefault("input_tokens", 10_000)
    kw.setdefault("max_tokens", 1000)
    return CallRequest(provider, model, ATTR, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[BudgetStore]:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        opened = open_store("memory://")
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'budgets.db'}")
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        opened = open_store(f"{url}?prefix={prefix}")
    yield opened
    opened.close()


def test_sheet_knows_the_dearest_input_with_and_without_cache_writes() -> None:
    sheet = PriceCatalogue().sheet(provider="anthropic", model=SONNET)
    assert sheet.max_input_mtok == Decimal(12)  # the 1 h cache write, long-context tier
    assert sheet.max_input_mtok_no_cache_write == Decimal(6)  # plain input, long-context tier
    mini = PriceCatalogue().sheet(provider="openai", model="gpt-4o-mini")  # OpenAI bills no cache writes
    assert mini.max_input_mtok == mini.max_input_mtok_no_cache_write == Decimal("0.15")
    assert sheet.worst_case(10_000, 1000) == Decimal("0.1425")
    assert sheet.worst_case(10_000, 1000, cache_writes=False) == Decimal("0.0825")


def test_reserves_at_the_tier_the_input_falls_in_and_the_write_price_of_the_ttl_asked() -> None:
    governor, _, _ = make(open_store("memory://"))
    plain = governor.admit(call(cache_writes=False))
    writes = governor.admit(call(cache_writes=True))
    default = governor.admit(call())
    # 10,000 counted + the 20 % margin = 12,000 input at $3/M (base tier: far below 200k) + 1,000 output at $15/M
    assert plain.decision.reserve == Amounts(nanos=51_000_000, tokens=13_000, requests=1)
    # the same input at $6/M: the 1 h cache write price, since the request does not say which TTL it writes
    assert writes.decision.reserve is not None and writes.decision.reserve.nanos == 87_000_000
    assert default.decision.reserve == writes.decision.reserve  # the default stays conservative
    (status,) = governor.status()
    assert status.reserved.nanos == 51_000_000 + 2 * 87_000_000
    # a 5 min breakpoint after 5,000 counted tokens: 6,000 at $3.75/M, 6,000 at $3/M
    five = governor.admit(call(cache_write_tokens=5_000, cache_write_1h_tokens=0))
    assert five.decision.reserve is not None and five.decision.reserve.nanos == 22_500_000 + 18_000_000 + 15_000_000
    # 1 h up to 2,000 tokens, 5 min up to 5,000: 2,400 at $6/M, 3,600 at $3.75/M, 6,000 at $3/M
    both = governor.admit(call(cache_write_tokens=5_000, cache_write_1h_tokens=2_000))
    assert both.decision.reserve is not None
    assert both.decision.reserve.nanos == 14_400_000 + 13_500_000 + 18_000_000 + 15_000_000
    # the long-context tier only once the input reaches it: 250k counted → 300k, every token at $6/M, output $22.5/M
    long = governor.admit(call(cache_writes=False, input_tokens=250_000))
    assert long.decision.reserve == Amounts(nanos=1_822_500_000, tokens=301_000, requests=1)
    openai = [governor.admit(call("openai", "gpt-4o-mini", cache_writes=flag)) for flag in (False, True)]
    assert openai[0].decision.reserve == openai[1].decision.reserve  # no cache-write price: nothing changes


def test_hard_bound_decides_the_tier_of_the_worst_case_hold() -> None:
    governor, _, _ = make(open_store("memory://"))
    # 150k counted (180k with the margin) but up to 400k by its bytes: reserved at the base tier, held at the top
    admission = governor.admit(call(cache_writes=False, input_tokens=150_000, input_bound=400_000))
    assert admission.decision.reserve == Amounts(nanos=555_000_000, tokens=181_000, requests=1)
    assert admission.decision.hold == Amounts(nanos=2_422_500_000, tokens=401_000, requests=1)
    # a bound below the margin caps the estimate: base64 counts one token a byte, so bytes are exact
    exact = governor.admit(call(cache_writes=False, input_tokens=1_000, input_bound=1_100))
    assert exact.decision.reserve == exact.decision.hold == Amounts(nanos=18_300_000, tokens=2_100, requests=1)


def test_output_clamp_uses_the_cheaper_input_when_no_cache_is_written() -> None:
    governor, _, _ = make(open_store("memory://"), usd="0.1")
    # $0.10 left: 20,000 counted (24,000 with the margin) costs $0.072 at plain input, $0.144 at the 1 h write price
    plain = governor.admit(call(cache_writes=False, input_tokens=20_000, max_tokens=4000))
    assert plain.decision.calls_model and plain.decision.max_tokens == 1866  # ($0.10 - $0.072) / $15 per M
    governor.settle(plain, None)
    writes = governor.admit(call(cache_writes=True, input_tokens=20_000, max_tokens=4000))
    # At the write price the input alone would not fit at sonnet: the call goes one tier down, where it does.
    assert writes.decision.model == "claude-haiku-4-5" and writes.decision.downgraded
    assert writes.reservation is not None and writes.decision.reserve.nanos <= 100_000_000


def test_actual_cache_writes_over_a_plain_reservation_are_recorded_in_full(store: BudgetStore) -> None:
    governor, clock, ledger = make(store, usd="1")
    admission = governor.admit(call(cache_writes=False, input_tokens=1000, max_tokens=100))
    assert admission.decision.reserve is not None
    reserved = admission.decision.reserve.nanos
    # The caller wrote 300,000 tokens of cache after all: $12/M past 200k, $3.60 — far past reservation and limit.
    billed = Usage(input_tokens=1000, cache_write_1h_tokens=300_000, output_tokens=100)
    event = governor.settle(admission, billed)
    assert event.cost.cache_write_1h == Decimal("3.6") and to_nanos(event.cost.total) > reserved
    (status,) = governor.status()
    assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in ledger.events) == to_nanos(event.cost.total)
    assert status.reserved == Amounts() and status.utilisation > 1
    clock.now += 1
    after = governor.admit(call(cache_writes=False, input_tokens=10, max_tokens=10))
    assert not after.decision.calls_model  # the overspend counts against what is left


def test_late_settle_of_unreserved_cache_writes_still_counts(store: BudgetStore) -> None:
    governor, clock, ledger = make(store, lease_seconds=10)
    admission = governor.admit(call(cache_writes=False, input_tokens=1000, max_tokens=100))
    clock.now += 60  # the lease lapsed and its reservation went back to the pool
    billed = Usage(cache_write_5m_tokens=50_000, cache_read_tokens=1000, output_tokens=100)
    event = governor.settle(admission, billed)
    (status,) = governor.status()
    assert status.reserved == Amounts()
    assert status.spent.nanos == to_nanos(event.cost.total) == sum(to_nanos(e.cost.total) for e in ledger.events)
    assert status.spent.tokens == billed.total_tokens
