"""A task-class context window in process: the wrapped client sends the trimmed context (system prompt and the
latest turns kept, the large tool result shortened) and gets the SDK's own answer."""

from __future__ import annotations

import fiscus
from fiscus.guards.registry import BreakerRegistry
from tests.sdk.conftest import make_governor

LONG = [
    {"role": "system", "content": "You sort support tickets."},
    {"role": "user", "content": "Pull the account history."},
    {
        "role": "assistant",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "history", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "row, " * 3000},
    {"role": "user", "content": "Which queue does this ticket go to?"},
]


def test_the_window_trims_what_a_wrapped_client_sends(openai_client, tmp_path) -> None:
    governor, ledger, _ = make_governor(context={"triage": 1000})
    breakers = BreakerRegistry(postmortem_dir=tmp_path)
    triage = fiscus.wrap(openai_client, task_class="triage", governor=governor, breakers=breakers)
    reply = triage.chat.completions.create(model="gpt-4o-mini", messages=LONG)
    assert reply.usage is not None and reply.usage.prompt_tokens < 1500
    plain = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    assert plain.chat.completions.create(model="gpt-4o-mini", messages=LONG).usage.prompt_tokens > 3000
    assert len(ledger.events) == 2
