"""Savings end to end: every answered call records its ungoverned cost and the saving per lever (cache, route,
context, summary), adding up to ungoverned − actual; the rolling summary is written once per session by the
family's cheapest model and recorded as its own event; refused work records no saving."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.config import OptimiseConfig
from fiscus.events.cost_event import CallStatus
from tests.gateway.conftest import real_gateway

POLICY = """
version: 1
routes:
  triage: [claude-haiku-4-5]
context:
  windowed: 3000
summaries:
  research: {keep_last: 2, refresh_every: 2}
budgets:
  - {name: day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""
FILLER = "quarterly figures by region and segment, with notes. "


def _turns(steps: int, tag: str) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [{"role": "user", "content": f"Research {tag}."}]
    for step in range(steps):
        use = {"type": "tool_use", "id": f"{tag}{step}", "name": "fetch", "input": {"page": step}}
        done = {"type": "tool_result", "tool_use_id": use["id"], "content": f"{tag} page {step}: " + FILLER * 150}
        turns += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [done]}]
    return turns


def _sums_hold(event: Any) -> None:
    assert event.ungoverned_usd is not None and event.saved is not None
    assert event.ungoverned_usd - event.saved.total == event.cost.total


def test_levers_add_up_and_the_summary_is_its_own_event(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(
        tmp_path,
        emulator_url,
        POLICY,
        f"sqlite:///{tmp_path}/budget.db",
        config_update={"optimise": OptimiseConfig(prompt_cache=True)},
    ) as real:
        claude = real.anthropic()

        def ask(task_class: str, session: str, messages: list[dict[str, Any]]) -> Any:
            headers = {"x-fiscus-task-class": task_class, "x-fiscus-session": session}
            return claude.messages.with_raw_response.create(
                model="claude-sonnet-4-6", max_tokens=32, messages=messages, extra_headers=headers
            )

        long = _turns(5, "alpha")  # six groups: four age out (two kept)
        first = ask("research", "s1", long).parse().usage
        ask("research", "s1", long)  # the same aged turns: the summary is reused, not written again
        ask("triage", "s2", [{"role": "user", "content": "Is ticket 7 a billing question?"}])
        windowed = ask("windowed", "s3", _turns(4, "beta"))
        assert int(windowed.headers["x-fiscus-compressed-tokens"]) > 0
        events = real.events()
    summaries = [e for e in events if e.requested_model == "claude-haiku-4-5" and e.attribution.session == "s1"]
    assert len(summaries) == 1  # one summary per session and aged turns
    (summary,) = summaries
    assert summary.ungoverned_usd == 0 and summary.saved is not None
    assert summary.saved.summary == -summary.cost.total < 0
    assert first.input_tokens < 5000  # the summary and the two newest groups, not all ~10k tokens
    research = [e for e in events if e.requested_model == "claude-sonnet-4-6" and e.attribution.session == "s1"]
    assert len(research) == 2 and all(e.saved.summary > 0 for e in research)
    routed = next(e for e in events if e.attribution.session == "s2")
    assert routed.served_model == "claude-haiku-4-5" and routed.saved.route > 0
    context = next(e for e in events if e.attribution.session == "s3")
    assert context.saved.context > 0
    for event in events:
        _sums_hold(event)


def test_refused_work_is_no_saving(tmp_path: Path, emulator_url: str) -> None:
    tiny = "version: 1\nbudgets:\n  - {name: tiny, scope: {team: growth}, window: day, limit: {usd: 0.000001}}\n"
    with real_gateway(tmp_path, emulator_url, tiny, f"sqlite:///{tmp_path}/budget.db") as real:
        real.anthropic().messages.create(
            model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": "Hello"}]
        )
        (event,) = real.events()
    assert event.status in (CallStatus.PARTIAL, CallStatus.BLOCKED)
    assert event.ungoverned_usd is None and event.saved is None
    assert Decimal(0) == event.cost.total
