"""A task class routed out of its model's family through wrapped official clients, as through the gateway: the
openai client asks for gpt-4o and is answered by the emulator's Anthropic endpoint (claude-haiku-4-5), whole,
raw, through with_streaming_response and streamed, sync and async, as the SDK's own Chat Completions objects;
the anthropic client asks for a Claude model and gets gpt-4o-mini as Messages. Priced at the served model and
provider on the same budgets, the route's saving recorded; without the other provider's credentials the route
is skipped, logged, and the call stays on the model asked for."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

import fiscus
from fiscus.events.cost_event import CostEvent
from fiscus.pricing import PriceCatalogue
from fiscus.sdk.runtime import default_governor
from tests.sdk.test_batch_settling import KEY_ENV, ledger_events
from tests.sdk.test_batches import reserved, spent

POLICY = """
version: 1
routes:
  to-claude: [{from: gpt-4o, to: claude-haiku-4-5}]
  to-gpt: [{from: claude, to: gpt-4o-mini}]
budgets:
  - {name: day, scope: {team: growth}, window: day, limit: {usd: 50}}
"""


def write_config(tmp: Path, emulator_url: str, budget_store: str, *, providers: bool = True) -> Path:
    import os

    os.environ.setdefault(KEY_ENV, "sk-emulator")
    (tmp / "policy.yaml").write_text(POLICY)
    text = f"ledger: sqlite:///{tmp}/ledger.db\nbudget_store: {budget_store}\npolicy: {tmp}/policy.yaml\n"
    if providers:
        text += "providers:\n"
        for name in ("openai", "anthropic"):
            text += f"  {name}: {{kind: {name}, base_url: '{emulator_url}/v1', api_key_env: {KEY_ENV}}}\n"
    path = tmp / "fiscus.yaml"
    path.write_text(text)
    return path


@pytest.fixture(params=["sqlite", "redis"])
def budget_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


def check_priced(events: list[CostEvent], expected: dict[str, tuple[str, str, str]]) -> None:
    catalogue = PriceCatalogue()
    by_session = {e.attribution.session: e for e in events}
    assert set(by_session) == set(expected)
    for session, (provider, served, asked) in expected.items():
        event = by_session[session]
        assert (event.provider, event.served_model, event.requested_model) == (provider, served, asked)
        assert event.usage.input_tokens > 0 and event.usage.output_tokens > 0
        priced = catalogue.sheet(provider=provider, model=served, at=event.timestamp).cost(event.usage)
        assert event.cost.total == priced.total > 0  # priced at the served model
        assert event.saved is not None and event.saved.route > 0  # the target is cheaper than asked
        assert event.ungoverned_usd is not None and event.ungoverned_usd - event.saved.total == event.cost.total


def reached(emulator_url: str) -> Counter[str]:
    return Counter(httpx.get(f"{emulator_url}/_emulator/stats").json()["by_endpoint"])


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_gpt_to_claude_and_back_through_wrapped_clients(tmp_path: Path, emulator_url: str, budget_store: str) -> None:
    config = write_config(tmp_path, emulator_url, budget_store)
    governor = default_governor(config)
    gpt_client = openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0)
    gpt = fiscus.wrap(gpt_client, config=config, team="growth", task_class="to-claude")
    before = reached(emulator_url)
    with fiscus.session(session_id="s1"):
        answer = gpt.chat.completions.create(model="gpt-4o", messages=ask("Ticket 12?"), max_tokens=40)  # type: ignore[arg-type]
    assert reached(emulator_url) - before == Counter({"anthropic.messages": 1})  # Anthropic's endpoint, not OpenAI's
    assert answer.object == "chat.completion" and answer.model == "claude-haiku-4-5"
    assert answer.choices[0].message.content and answer.usage is not None and answer.usage.completion_tokens > 0
    with fiscus.session(session_id="s2"):
        chunks = list(
            gpt.chat.completions.create(model="gpt-4o", messages=ask("Ticket 13?"), max_tokens=40, stream=True)  # type: ignore[arg-type]
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(not c.usage for c in chunks)  # the usage chunk fiscus asked for is not shown to a caller who did not
    with fiscus.session(session_id="s3"):
        raw = gpt.chat.completions.with_raw_response.create(model="gpt-4o", messages=ask("Ticket 14?"), max_tokens=40)  # type: ignore[arg-type]
    assert raw.parse().model == "claude-haiku-4-5"
    with fiscus.session(session_id="s7"):
        asked = {"model": "gpt-4o", "messages": ask("Ticket 18?"), "max_tokens": 40}
        with gpt.chat.completions.with_streaming_response.create(**asked) as response:
            assert response.parse().model == "claude-haiku-4-5"
    claude_client = anthropic.Anthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0)
    claude = fiscus.wrap(claude_client, config=config, team="growth", task_class="to-gpt")
    with fiscus.session(session_id="s4"):
        message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=40, messages=ask("Tag ticket 15."))  # type: ignore[arg-type]
    assert message.type == "message" and message.model == "gpt-4o-mini" and message.content[0].text  # type: ignore[union-attr]
    asked = {"model": "claude-sonnet-4-6", "max_tokens": 40, "messages": ask("Tag 16.")}
    with fiscus.session(session_id="s5"), claude.messages.stream(**asked) as stream:
        text = "".join(stream.text_stream)
    assert text

    async def on_async() -> str:
        agpt = fiscus.wrap(
            openai.AsyncOpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0),
            config=config,
            team="growth",
            task_class="to-claude",
        )
        with fiscus.session(session_id="s6"):
            streamed = await agpt.chat.completions.create(
                model="gpt-4o", messages=ask("Ticket 17?"), max_tokens=40, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in streamed if c.choices])

    assert asyncio.run(on_async())
    assert governor.ledger.flush(timeout=10)
    events = [e for e in ledger_events(tmp_path) if e.attribution.session]
    claude_call, gpt_call = ("anthropic", "claude-haiku-4-5", "gpt-4o"), ("openai", "gpt-4o-mini", "claude-sonnet-4-6")
    expected = {"s1": claude_call, "s2": claude_call, "s3": claude_call, "s4": gpt_call, "s5": gpt_call}
    check_priced(events, expected | {"s6": claude_call, "s7": claude_call})
    assert {e.attribution.session for e in events if e.streamed} == {"s2", "s5", "s6"}
    total = sum((e.cost.total for e in ledger_events(tmp_path)), Decimal(0))
    assert spent(governor) == int(total * 10**9) and reserved(governor) == 0  # the same budget, settled


def test_without_the_other_providers_credentials_the_route_is_skipped(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = write_config(tmp_path, emulator_url, f"sqlite:///{tmp_path}/budget.db", providers=False)
    governor = default_governor(config)
    gpt_client = openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0)
    gpt = fiscus.wrap(gpt_client, config=config, team="growth", task_class="to-claude")
    with caplog.at_level(logging.WARNING, logger="fiscus.sdk"):
        for _ in range(2):
            answer = gpt.chat.completions.create(model="gpt-4o", messages=ask("Ticket 12?"), max_tokens=40)  # type: ignore[arg-type]
            assert answer.model.startswith("gpt-4o")
    skipped = [r.getMessage() for r in caplog.records if "not taken" in r.getMessage()]
    assert len(skipped) == 1 and "claude-haiku-4-5" in skipped[0] and "ANTHROPIC_API_KEY" in skipped[0]
    assert governor.ledger.flush(timeout=10)
    events = ledger_events(tmp_path)
    assert len(events) == 2 and all(e.provider == "openai" and e.served_model.startswith("gpt-4o") for e in events)
    assert all(e.saved is None or e.saved.route == 0 for e in events)


def test_a_request_the_other_format_cannot_carry_is_a_readable_error(tmp_path: Path, emulator_url: str) -> None:
    config = write_config(tmp_path, emulator_url, f"sqlite:///{tmp_path}/budget.db")
    governor = default_governor(config)
    gpt_client = openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0)
    gpt = fiscus.wrap(gpt_client, config=config, team="growth", task_class="to-claude")
    before = reached(emulator_url)
    with pytest.raises(openai.BadRequestError, match="n > 1"):
        gpt.chat.completions.create(model="gpt-4o", messages=ask("Two takes?"), max_tokens=40, n=2)  # type: ignore[arg-type]
    assert reached(emulator_url) == before  # refused before any provider saw it
    assert governor.ledger.flush(timeout=10)
    (event,) = ledger_events(tmp_path)
    assert event.status.value == "error" and event.cost.total == 0 and "n > 1" in (event.error or "")
    assert reserved(governor) == 0 and spent(governor) == 0
