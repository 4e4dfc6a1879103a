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


def test_a_growing_agent_conversation_reads_its_history_back(tmp_path, emulator_url) -> None:
    """An agent whose context grows every step: from the third step on, all but the newest turn is a cache read."""
    with real_gateway(
        tmp_path,
        emulator_url,
        "budgets: []\n",
        f"sqlite:///{tmp_path}/budget.db",
        config_update={"optimise": OptimiseConfig(prompt_cache=True)},
    ) as real:
        client = real.anthropic()
        system = "Research desk. " + PLAYBOOK  # a prefix no other test has cached
        turns: list[dict] = [{"role": "user", "content": "Research the parcel market."}]
        reads, totals = [], []
        for step in range(5):
            answer = client.messages.create(model="claude-sonnet-4-6", max_tokens=16, system=system, messages=turns)
            u = answer.usage
            reads.append(u.cache_read_input_tokens)
            totals.append(u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens)
            # ~1,400 new tokens fetched per step (the same text again would be stopped as a loop)
            fetched = f"Result {step}: " + " ".join(f"row-{step}-{i}." for i in range(300))
            call = {"type": "tool_use", "id": f"t{step}", "name": "fetch", "input": {}}
            result = {"type": "tool_result", "tool_use_id": f"t{step}", "content": fetched}
            turns += [{"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]
        assert reads[0] == reads[1] == 0  # the conversation is new, then seen to go on: written
        for step in (2, 3, 4):
            assert reads[step] >= totals[step - 1] - 50  # everything the previous step sent
        assert sum(reads) / sum(totals) > 0.5
