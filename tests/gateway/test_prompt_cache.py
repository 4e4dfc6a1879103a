"""Prompt-cache placement end to end: with `optimise.prompt_cache` the second call with the same long system
prompt writes the cache and the third reads it, each priced (and reserved) as such."""

from __future__ import annotations

from fiscus.config import OptimiseConfig
from tests.gateway.conftest import real_gateway
from tests.shaping.test_cache_placement import MESSAGES, PLAYBOOK


def test_the_gateway_places_the_breakpoint_and_prices_write_and_read(tmp_path, emulator_url) -> None:
    policy = "budgets:\n  - {name: support-day, scope: {team: growth}, window: day, limit: {usd: 50}}\n"
    with real_gateway(
        tmp_path,
        emulator_url,
        policy,
        f"sqlite:///{tmp_path}/budget.db",
        config_update={"optimise": OptimiseConfig(prompt_cache=True)},
    ) as real:
        client = real.anthropic()
        answers = [
            client.messages.with_raw_response.create(
                model="claude-sonnet-4-6", max_tokens=32, system=PLAYBOOK, messages=MESSAGES
            )
            for _ in range(3)
        ]
        assert [a.headers.get("x-fiscus-prompt-cache") for a in answers] == [None, "placed", "placed"]
        usage = [a.parse().usage for a in answers]
        assert usage[0].cache_creation_input_tokens == usage[0].cache_read_input_tokens == 0
        assert usage[1].cache_creation_input_tokens > 1000 and usage[2].cache_read_input_tokens > 1000
        costs = [float(a.headers["x-fiscus-cost-usd"]) for a in answers]
        assert costs[1] > costs[0] > costs[2]  # a write costs 1.25 × input, a read 0.1 ×
        events = real.events()
        assert sorted(e.usage.cache_write_5m_tokens for e in events)[-1] == usage[1].cache_creation_input_tokens
