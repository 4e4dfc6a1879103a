"""The proxied routes' fast path: the client's bytes are forwarded with only the fields fiscus adds spliced in,
yet the output cap, the downgraded model and the injected `include_usage` still reach the provider; a whole
answer carries the cost the ledger records, though it is sent before the call is settled."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.conftest import Real, serve_real

MESSAGES = [{"role": "user", "content": "Summarise the quarter in detail, please."}]
POLICY = """
version: 1
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 100}
"""


def _client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0)


def test_cap_added_to_a_request_without_one(gw) -> None:
    gw.governor.plan.max_tokens = 5
    completion = _client(gw).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.usage.completion_tokens <= 5 and completion.choices[0].finish_reason == "length"


def test_downgrade_rewrites_the_model_sent(gw) -> None:
    gw.governor.plan.model = "gpt-4o-mini"
    raw = _client(gw).chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, max_tokens=50)
    assert raw.parse().model == "gpt-4o-mini" == raw.headers["x-fiscus-served-model"]
    assert gw.governor.last_event().served_model == "gpt-4o-mini"


def test_stream_with_options_but_no_usage_still_counted(gw) -> None:
    # stream_options is present without include_usage: the body is re-serialised with it merged in.
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True, "stream_options": {}}
    with httpx.Client() as http:
        answer = http.post(gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {gw.key}"})
    assert answer.status_code == 200 and b'"choices":[]' not in answer.content
    event = gw.governor.last_event()
    assert event.usage.output_tokens > 0 and not event.usage.estimated


@pytest.fixture
def real(tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    yield from serve_real(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db")


def test_cost_header_matches_the_settled_event(real: Real) -> None:
    client = real.openai()
    costs = [
        client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES).headers["x-fiscus-cost-usd"]
        for model in ("gpt-4o-mini", "gpt-4o")
    ]
    events = real.events()
    assert [format(e.cost.total, "f") for e in events] == costs and all(Decimal(c) > 0 for c in costs)
    (status,) = real.governor.status()
    assert status.reserved.requests == 0 and status.spent.requests == 2
