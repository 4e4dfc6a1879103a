"""Task-class routing in process: a wrapped client whose calls carry a routed task class (from `wrap` or the
session) sends them to the routed model, and gets the SDK's own response from it."""

from __future__ import annotations

import fiscus
from fiscus.guards.registry import BreakerRegistry
from tests.sdk.conftest import make_governor

MESSAGES = [{"role": "user", "content": "Which queue does this ticket belong to?"}]


def test_wrapped_calls_follow_their_task_class_route(openai_client, anthropic_client, tmp_path) -> None:
    governor, ledger, _ = make_governor(routes={"triage": ["gpt-4o-mini", "claude-haiku-4-5"]})
    breakers = BreakerRegistry(postmortem_dir=tmp_path)
    openai_triage = fiscus.wrap(openai_client, task_class="triage", governor=governor, breakers=breakers)
    assert openai_triage.chat.completions.create(model="gpt-4o", messages=MESSAGES).model == "gpt-4o-mini"
    claude = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers)
    with fiscus.session(agent="support", task_class="triage"):
        reply = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)
    assert reply.model == "claude-haiku-4-5"
    assert claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES).model == (
        "claude-sonnet-4-6"
    )
    assert [(e.requested_model, e.served_model) for e in ledger.events] == [
        ("gpt-4o", "gpt-4o-mini"),
        ("claude-sonnet-4-6", "claude-haiku-4-5"),
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),
    ]
