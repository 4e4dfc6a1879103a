"""Open breakers, loops and upstream failures answered on the SDK paths as on the gateway: the policy's action
(`guards.breakers.on_open`, the loop action) picks the partial answer or the typed error; an error-rate breaker
opened by the provider's own failures is an outage (the provider SDK's 503), and 4xx the request caused open
nothing ("SDK error classification")."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest
import yaml

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.guards.breaker import BreakerConfig
from fiscus.guards.registry import BreakerRegistry

MESSAGES = [{"role": "user", "content": "Two words about tides."}]
FAILING = BreakerConfig(error_rate=0.5, min_calls=3, error_window=10, cooldown_s=120)


def test_open_breaker_is_a_marked_partial_answer_on_each_path(openai_client, governed):
    governor, ledger, _, breakers = governed()
    breakers.trip("a", "spend_rate", "spend $3 in the last hour, 9x the median")
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    marker = reply.model_extra["fiscus"]
    assert reply.choices[0].finish_reason == "stop" and marker["code"] == "breaker_open"
    assert reply.choices[0].message.content.startswith("[fiscus] Stopped before calling a model: agent:a circuit")
    assert 0 < marker["retry_after"] <= 300
    raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
    assert raw.headers["x-fiscus-partial"] == "breaker_open" and raw.parse().status == "completed"
    strict = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers, on_exhausted="raise")
    with pytest.raises(fiscus.GuardRefused) as caught:
        strict.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.code == "breaker_open" and 0 < caught.value.retry_after <= 300
    assert [e.status for e in ledger.events] == [CallStatus.PARTIAL, CallStatus.PARTIAL, CallStatus.BLOCKED]


def test_on_open_block_in_the_config_raises_on_every_path(emulator_url, tmp_path: Path):
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ledger": f"sqlite:///{tmp_path / 'ledger.db'}",
                "budget_store": "memory://",
                "guards": {"breakers": {"on_open": "block"}, "postmortem_dir": None},
            }
        )
    )
    gpt = fiscus.wrap(openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0), config=config)
    claude = fiscus.wrap(anthropic.Anthropic(base_url=emulator_url, api_key="k", max_retries=0), config=config)
    gpt.fiscus_gate.breakers.trip(None, "spend_rate", "account-wide spend 5x the median")
    with pytest.raises(fiscus.GuardRefused) as caught:
        gpt.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.code == "breaker_open" and caught.value.retry_after is not None
    with pytest.raises(fiscus.GuardRefused):
        gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    with (
        pytest.raises(fiscus.GuardRefused),
        claude.messages.with_streaming_response.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES),
    ):
        pass


def test_provider_failures_open_the_models_breaker_as_an_outage(openai_client, governed, tmp_path: Path):
    governor, ledger, _, _ = governed()
    breakers = BreakerRegistry(FAILING, postmortem_dir=tmp_path / "pm")
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-emulator-error": "500"}
            )
    with pytest.raises(openai.InternalServerError) as outage:  # no model called: the SDK's own 503
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert outage.value.status_code == 503 and 0 < int(outage.value.response.headers["retry-after"]) <= 120
    reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # another model is not down
    assert reply.choices[0].finish_reason != "length" and "fiscus" not in (reply.model_extra or {})
    assert [e.status for e in ledger.events] == [CallStatus.ERROR] * 3 + [CallStatus.BLOCKED, CallStatus.OK]


def test_requests_the_client_got_wrong_open_nothing(openai_client, anthropic_client, governed, tmp_path: Path):
    governor, ledger, _, _ = governed()
    breakers = BreakerRegistry(FAILING, postmortem_dir=tmp_path / "pm")
    gpt = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    claude = fiscus.wrap(anthropic_client, agent="a", governor=governor, breakers=breakers)
    for status, error in (
        ("404", openai.NotFoundError),
        ("400", openai.BadRequestError),
        ("429", openai.RateLimitError),
    ):
        for _ in range(3):
            with pytest.raises(error):
                gpt.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-emulator-error": status}
                )
    assert gpt.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content
    for _ in range(3):
        with pytest.raises(anthropic.InternalServerError):
            claude.messages.create(
                model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, extra_headers={"x-emulator-error": "529"}
            )
    with pytest.raises(anthropic.InternalServerError) as outage:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    assert outage.value.status_code == 503
    assert [e.status for e in ledger.events].count(CallStatus.ERROR) == 12
    assert sum(1 for e in ledger.events if e.status is CallStatus.OK) == 1


def test_a_loop_follows_its_action(openai_client, governed):
    governor, ledger, _, breakers = governed()
    stop = fiscus.wrap(
        openai_client, agent="a", governor=governor, breakers=breakers, loops=fiscus.LoopConfig(max_steps=1)
    )
    with fiscus.session(agent="a"):
        stop.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        reply = stop.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        raw = stop.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.model_extra["fiscus"]["code"] == "loop_detected" and reply.choices[0].finish_reason == "stop"
    assert raw.headers["x-fiscus-partial"] == "loop_detected"
    strict = fiscus.wrap(
        openai_client,
        agent="b",
        governor=governor,
        breakers=breakers,
        loops=fiscus.LoopConfig(max_steps=1, action="raise"),
    )
    with fiscus.session(agent="b"), pytest.raises(fiscus.LoopDetectedError) as caught:
        strict.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        strict.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(caught.value, fiscus.GuardRefused) and caught.value.code == "loop_detected"
    ok, partial, blocked = CallStatus.OK, CallStatus.PARTIAL, CallStatus.BLOCKED
    assert [e.status for e in ledger.events] == [ok, partial, partial, ok, blocked]


def test_observers_raise_the_refusal_with_its_code(governed):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from fiscus.sdk.langchain import FiscusCallbackHandler

    governor, ledger, _, breakers = governed()
    breakers.trip("r", "spend_rate", "spend 9x the median")
    handler = FiscusCallbackHandler(agent="r", governor=governor, breakers=breakers)
    model = GenericFakeChatModel(messages=iter([AIMessage(content="never")]))
    with pytest.raises(fiscus.GuardRefused) as caught:  # a callback cannot hand back a partial answer
        model.invoke("hi", config={"callbacks": [handler]})
    assert caught.value.code == "breaker_open" and 0 < caught.value.retry_after <= 300
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.total_usd == 0
