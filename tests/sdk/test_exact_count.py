"""Near a limit, a wrapped Anthropic client has the provider count the input (`messages.count_tokens`) when the
byte bound alone would stop the call: the call then runs on the model asked for, within the budget. A count that
fails leaves the byte bound standing (the call is downgraded as before). Far from the limit nothing is counted."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

import fiscus

MODEL = "claude-sonnet-4-6"
PROMPT = "the budget holds " * 2_500  # 42,500 ASCII bytes: ~10.6k tokens counted, a 42.5k-token byte bound
BUDGET = [{"name": "agent-day", "scope": {"agent": "researcher"}, "window": "day", "limit": {"usd": 0.05},
           "thresholds": [{"at": 1.0, "action": "partial"}]}]  # fmt: skip


def counts(emulator_url: str) -> int:
    stats = httpx.get(f"{emulator_url}/_emulator/stats").json()
    return int(stats["by_endpoint"].get("anthropic.count_tokens", 0))


def test_counted_near_the_limit_runs_on_the_model_asked(anthropic_client, governed, emulator_url):
    governor, ledger, _, breakers = governed(BUDGET)
    client = fiscus.wrap(anthropic_client, agent="researcher", governor=governor, breakers=breakers)
    before = counts(emulator_url)
    reply = client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}])
    assert reply.model == MODEL
    assert counts(emulator_url) == before + 1
    [event] = ledger.events
    assert event.served_model == MODEL and event.decision in (None, "allow")
    assert ledger.spent() <= Decimal("0.05")
    # the same request far from any limit is not counted
    roomy, _, _, _ = governed([{**BUDGET[0], "limit": {"usd": 10}}])
    far = fiscus.wrap(anthropic_client, agent="researcher", governor=roomy, breakers=breakers)
    far.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}])
    assert counts(emulator_url) == before + 1


def test_raw_response_is_counted_too(anthropic_client, governed, emulator_url):
    governor, ledger, _, breakers = governed(BUDGET)
    client = fiscus.wrap(anthropic_client, agent="researcher", governor=governor, breakers=breakers)
    before = counts(emulator_url)
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]
    )
    assert raw.parse().model == MODEL and counts(emulator_url) == before + 1
    [event] = ledger.events
    assert event.served_model == MODEL and ledger.spent() <= Decimal("0.05")


async def test_async_client_counts(async_anthropic_client, governed, emulator_url):
    governor, ledger, _, breakers = governed(BUDGET)
    client = fiscus.wrap(async_anthropic_client, agent="researcher", governor=governor, breakers=breakers)
    before = counts(emulator_url)
    reply = await client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}])
    assert reply.model == MODEL and counts(emulator_url) == before + 1
    stream = await client.messages.create(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "short"}], stream=True
    )
    assert [e.type async for e in stream][-1] == "message_stop"
    assert ledger.spent() <= Decimal("0.05")


def test_a_failed_count_leaves_the_byte_bound(anthropic_client, governed, emulator_url):
    governor, ledger, _, breakers = governed(BUDGET)
    client = fiscus.wrap(anthropic_client, agent="researcher", governor=governor, breakers=breakers)
    failing = {"x-emulator-error-sequence": "500,200", "x-emulator-sequence-key": "count-fails-once"}
    reply = client.messages.create(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}], extra_headers=failing
    )
    [event] = ledger.events
    assert event.decision == "downgrade" and event.served_model != MODEL and reply.model == event.served_model
    assert ledger.spent() <= Decimal("0.05")


@pytest.mark.parametrize("chars_per_token", ["1"])
def test_a_provider_counting_every_character_still_cannot_pass_the_limit(
    anthropic_client, governed, emulator_url, chars_per_token
):
    """Base64-like text the provider counts one token per character: the count says so, and the budget holds."""
    governor, ledger, _, breakers = governed(BUDGET)
    client = fiscus.wrap(anthropic_client, agent="researcher", governor=governor, breakers=breakers)
    headers = {"x-emulator-chars-per-token": chars_per_token}
    for _ in range(6):
        client.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Zm9v" * 1_500}], extra_headers=headers
        )
    assert ledger.spent() <= Decimal("0.05")
