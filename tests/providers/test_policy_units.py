"""Backoff, retry-after parsing, retry budget and the RPM/TPM limiter on a fake clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from fiscus.providers import Backoff, ProviderRateLimiter, RateLimitedError, RetryBudget, is_retryable, retry_after_s

from .conftest import FakeTime


def test_retryable_statuses() -> None:
    assert all(is_retryable(s) for s in (408, 409, 429, 500, 502, 503, 529))
    assert not any(is_retryable(s) for s in (200, 400, 401, 403, 404, 422))


def test_full_jitter_within_the_exponential_cap() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0)
    rng = random.Random(7)
    for n, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0)]:
        delays = [backoff.delay(n, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread over the whole range


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s({"Retry-After": "3"}) == 3.0
    assert retry_after_s({"retry-after": "1.5"}) == 1.5
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "Thu, 01 Jan 2026 12:00:07 GMT"}, now=lambda: now) == 7.0
    assert retry_after_s({"retry-after": "Thu, 01 Jan 2026 11:00:00 GMT"}, now=lambda: now) == 0.0
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None


def test_retry_budget_is_a_share_of_recent_requests(fake_time: FakeTime) -> None:
    budget = RetryBudget(0.1, window_s=10.0, min_retries=0, clock=fake_time.clock)
    for _ in range(9):
        budget.record_request()
    assert not budget.try_spend()
    budget.record_request()
    assert budget.try_spend() and not budget.try_spend()
    fake_time.now += 10.5  # the window slides past everything
    assert budget.recent == (0, 0)
    assert not budget.try_spend()


def test_retry_budget_floor(fake_time: FakeTime) -> None:
    budget = RetryBudget(0.1, min_retries=2, clock=fake_time.clock)
    budget.record_request()
    assert [budget.try_spend() for _ in range(4)] == [True, True, False, False]


def limiter(fake_time: FakeTime, **kwargs: object) -> ProviderRateLimiter:
    options = {"rpm": None, "tpm": None, "headroom": 0.2, "max_wait_s": 0.0} | kwargs
    return ProviderRateLimiter("openai", clock=fake_time.clock, sleep=fake_time.sleep, **options)  # type: ignore[arg-type]


async def test_rpm_kept_under_the_provider_limit(fake_time: FakeTime) -> None:
    rl = limiter(fake_time, rpm=10)
    assert rl.rpm == 8
    for _ in range(8):
        await rl.acquire()
        fake_time.now += 1.0
    with pytest.raises(
        RateLimitedError, match=r"'openai' is at fiscus's limit of 8 requests/min.*retry in 52.0 s"
    ) as info:
        await rl.acquire()
    assert info.value.retry_after_s == pytest.approx(52.0)
    fake_time.now += 52.0
    await rl.acquire()


async def test_limiter_waits_briefly_instead_of_refusing(fake_time: FakeTime) -> None:
    rl = limiter(fake_time, rpm=5, headroom=0.0, max_wait_s=5.0)
    for _ in range(5):
        await rl.acquire()
    fake_time.now += 57.0
    await rl.acquire()  # waits 3 s for the oldest to leave the window
    assert fake_time.sleeps == [pytest.approx(3.0)]


async def test_tpm(fake_time: FakeTime) -> None:
    rl = limiter(fake_time, tpm=1000, headroom=0.1)  # 900 tokens/min
    await rl.acquire(500)
    fake_time.now += 10
    await rl.acquire(300)
    with pytest.raises(RateLimitedError, match=r"900 tokens/min.*retry in 50\.0 s"):
        await rl.acquire(200)  # needs the first 500 to expire
    fake_time.now += 50
    await rl.acquire(200)
    fake_time.now += 100
    await rl.acquire(5000)  # larger than the allowance: admitted into an empty window


async def test_unlimited_provider_never_waits(fake_time: FakeTime) -> None:
    rl = limiter(fake_time)
    for _ in range(1000):
        await rl.acquire(10**6)
    assert fake_time.sleeps == []
