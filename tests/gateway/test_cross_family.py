"""A task class routed out of its model's family, through the gateway's translation layer: the official openai
client asks for gpt-4o and is answered by the emulator's Anthropic endpoint (claude-haiku-4-5), whole and
streamed, in Chat Completions format; the anthropic client asks for a Claude model and gets gpt-4o-mini in
Messages format. Either way the call is priced at the served model and provider, reserved and settled on the
same budgets and recorded with the route's saving, like any route."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.config import ConfigError
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from tests.gateway.conftest import real_gateway

POLICY = """
version: 1
routes:
  to-claude: [{from: gpt-4o, to: claude-haiku-4-5}]
  to-gpt: [{from: claude, to: gpt-4o-mini}]
budgets:
  - {name: day, scope: {team: growth}, window: day, limit: {usd: 50}}
"""


def test_gpt_to_claude_and_back(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        gpt = real.openai()
        raw = gpt.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Which queue does ticket 12 belong to?"}],
            max_tokens=40,
            extra_headers={"x-fiscus-task-class": "to-claude", "x-fiscus-session": "s1"},
        )
        answer = raw.parse()
        assert raw.headers["x-fiscus-served-model"] == "claude-haiku-4-5"
        assert answer.object == "chat.completion" and answer.model == "claude-haiku-4-5"
        assert answer.choices[0].message.content and answer.usage is not None
        chunks = list(
            gpt.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "And ticket 13?"}],
                max_tokens=40,
                stream=True,
                extra_headers={"x-fiscus-task-class": "to-claude", "x-fiscus-session": "s2"},
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        back = real.anthropic().messages.with_raw_response.create(
            model="claude-sonnet-4-6",
            max_tokens=40,
            messages=[{"role": "user", "content": "Tag ticket 14."}],
            extra_headers={"x-fiscus-task-class": "to-gpt", "x-fiscus-session": "s3"},
        )
        message = back.parse()
        assert message.type == "message" and message.model == "gpt-4o-mini" and message.content[0].text  # type: ignore[union-attr]
        (status,) = real.governor.status()
        events = real.events()
    by_session = {e.attribution.session: e for e in events}
    catalogue = PriceCatalogue()
    for session, provider, served, asked in (
        ("s1", "anthropic", "claude-haiku-4-5", "gpt-4o"),
        ("s2", "anthropic", "claude-haiku-4-5", "gpt-4o"),
        ("s3", "openai", "gpt-4o-mini", "claude-sonnet-4-6"),
    ):
        event = by_session[session]
        assert (event.provider, event.served_model, event.requested_model) == (provider, served, asked)
        assert event.usage.input_tokens > 0 and event.usage.output_tokens > 0
        priced = catalogue.sheet(provider=provider, model=served, at=event.timestamp).cost(event.usage)
        assert event.cost.total == priced.total > 0  # priced at the served model
        assert event.saved is not None and event.saved.route > 0  # both targets are cheaper than asked
        assert event.ungoverned_usd is not None and event.ungoverned_usd - event.saved.total == event.cost.total
    assert by_session["s2"].streamed
    spent = sum((e.cost.total for e in events), Decimal(0))
    assert status.spent.nanos == int(spent * 10**9) and status.reserved.nanos == 0  # the same budget, settled


def test_a_cross_route_names_a_ladder_and_another_family() -> None:
    with pytest.raises(ConfigError, match="no ladder is named 'gpt-9'"):
        parse_policy({"routes": {"t": [{"from": "gpt-9", "to": "claude-haiku-4-5"}]}})
    with pytest.raises(ConfigError, match="same ladder"):
        parse_policy({"routes": {"t": [{"from": "claude", "to": "claude-haiku-4-5"}]}})
    policy = parse_policy({"routes": {"t": ["gpt-4o-mini", {"from": "claude", "to": "gpt-4o-mini"}]}})
    assert policy.routes == {"t": ("gpt-4o-mini",)} and policy.cross_routes == {"t": {"claude": "gpt-4o-mini"}}
