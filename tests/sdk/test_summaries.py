"""Rolling summaries in process: a wrapped client of a task class that opts in sends its aged turns as one
summary, written by one call (through the same client) to the family's cheapest model, priced, budgeted and
recorded as its own event, and written once per session and aged turns; the calls it shortened record the
summary's saving, and the levers add up."""

from __future__ import annotations

import asyncio
from typing import Any

import fiscus
from fiscus.guards.registry import BreakerRegistry
from tests.sdk.conftest import make_governor

FILLER = "quarterly figures by region and segment, with notes. "
RULES = {"summaries": {"research": {"keep_last": 2, "refresh_every": 2}}}


def _turns(steps: int, tag: str) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [{"role": "user", "content": f"Research {tag}."}]
    for step in range(steps):
        use = {"type": "tool_use", "id": f"{tag}{step}", "name": "fetch", "input": {"page": step}}
        done = {"type": "tool_result", "tool_use_id": use["id"], "content": f"{tag} page {step}: " + FILLER * 150}
        turns += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [done]}]
    return turns


def test_a_wrapped_client_sends_the_summary_and_pays_for_it_once(anthropic_client, tmp_path) -> None:
    budget = {"name": "day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 10}}
    governor, ledger, _ = make_governor([budget], **RULES)
    client = fiscus.wrap(
        anthropic_client,
        task_class="research",
        team="growth",
        governor=governor,
        breakers=BreakerRegistry(postmortem_dir=tmp_path),
    )
    long = _turns(5, "alpha")
    with fiscus.session(session_id="s1"):
        first = client.messages.create(model="claude-sonnet-4-6", max_tokens=32, messages=long)
        client.messages.create(model="claude-sonnet-4-6", max_tokens=32, messages=long)  # the summary reused
    with fiscus.session(session_id="s2"):  # another session writes its own
        raw = client.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=32, messages=long)
        assert raw.parse().usage.input_tokens == first.usage.input_tokens
    assert first.usage.input_tokens < 5000  # the summary and the two newest groups, not all ~10k tokens
    events = ledger.events
    summaries = [e for e in events if e.requested_model == "claude-haiku-4-5"]
    assert sorted(e.attribution.session for e in summaries) == ["s1", "s2"]  # once per session
    for summary in summaries:
        assert summary.cost.total > 0 and summary.ungoverned_usd == 0
        assert summary.saved is not None and summary.saved.summary == -summary.cost.total
    calls = [e for e in events if e.requested_model == "claude-sonnet-4-6"]
    assert len(calls) == 3 and all(e.saved is not None and e.saved.summary > 0 for e in calls)
    for event in events:
        assert event.ungoverned_usd is not None and event.saved is not None
        assert event.ungoverned_usd - event.saved.total == event.cost.total
    (status,) = governor.status()
    assert status.spent.nanos == sum(int(e.cost.total * 10**9) for e in events)  # all on the same budget


def test_an_async_openai_client(async_openai_client, tmp_path) -> None:
    governor, ledger, _ = make_governor(**RULES)
    client = fiscus.wrap(
        async_openai_client, task_class="research", governor=governor, breakers=BreakerRegistry(postmortem_dir=tmp_path)
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You research markets."}]
    for step in range(5):
        messages += [
            {"role": "user", "content": f"Step {step}: " + FILLER * 100},
            {"role": "assistant", "content": f"Noted step {step}."},
        ]
    messages.append({"role": "user", "content": "Conclude."})

    async def go() -> Any:
        return await client.chat.completions.create(model="gpt-4o", max_tokens=16, messages=messages)

    answer = asyncio.run(go())
    assert answer.usage.prompt_tokens < 2500  # about 5k tokens of aged steps went into the summary
    (summary,) = [e for e in ledger.events if e.requested_model == "gpt-4o-mini"]
    assert summary.saved is not None and summary.saved.summary == -summary.cost.total < 0
    (call,) = [e for e in ledger.events if e.requested_model == "gpt-4o"]
    assert call.saved is not None and call.saved.summary > 0
