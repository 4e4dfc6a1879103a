"""The official SDKs against the gateway (uvicorn on loopback) in front of the emulator: answers, usage captured
and priced exactly, streams relayed with the usage-only chunk hidden from clients that did not ask for it."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx
import openai

from fiscus.pricing import PriceCatalogue
from fiscus.usage.model import Usage

MESSAGES = [{"role": "user", "content": "How much did we spend?"}]
CATALOGUE = PriceCatalogue()


def _openai(gw, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, **kw)


def _price(provider: str, model: str, usage: Usage) -> Decimal:
    return CATALOGUE.price(usage, provider=provider, model=model).total


def test_chat_priced_from_reported_usage(gw) -> None:
    raw = _openai(gw).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    usage = Usage(input_tokens=completion.usage.prompt_tokens, output_tokens=completion.usage.completion_tokens)
    assert Decimal(raw.headers["x-fiscus-cost-usd"]) == _price("openai", "gpt-4o-mini", usage) > 0
    event = gw.governor.last_event()
    assert raw.headers["x-fiscus-request-id"] == event.id
    assert event.usage == usage and not event.usage.estimated
    assert event.attribution.agent == "support-bot" and event.attribution.team == "growth"


def _sse(url: str, key: str, path: str, body: dict, headers: dict | None = None) -> tuple[httpx.Response, bytes]:
    with httpx.Client(timeout=10) as client:
        response = client.post(url + path, json=body, headers={"authorization": f"Bearer {key}", **(headers or {})})
        return response, response.content


def test_chat_stream_hides_injected_usage_chunk_and_ends_with_cost(gw) -> None:
    chunks = list(_openai(gw).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert chunks and all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    event = gw.governor.last_event()
    assert event.streamed and not event.usage.estimated and event.usage.output_tokens > 0
    response, body = _sse(
        gw.url, gw.key, "/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    last = body.rstrip(b"\n").split(b"\n")[-1]
    assert last.startswith(b": x-fiscus-cost-usd=")
    event = gw.governor.last_event()
    assert Decimal(last.split(b"=")[1].decode()) == event.cost.total == _price("openai", "gpt-4o", event.usage)
    assert b'"choices":[]' not in body.replace(b" ", b"")


def test_chat_stream_keeps_usage_chunk_when_asked(gw) -> None:
    stream = _openai(gw).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    event = gw.governor.last_event()
    assert event.usage.output_tokens == chunks[-1].usage.completion_tokens


async def test_async_chat_and_stream(gw) -> None:
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0)
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.usage.prompt_tokens > 0
    text = ""
    async for chunk in await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        text += chunk.choices[0].delta.content or ""
    assert text
    await client.close()


def test_responses_whole_and_streamed(gw) -> None:
    client = _openai(gw)
    raw = client.responses.with_raw_response.create(model="gpt-4o", input="hello")
    response = raw.parse()
    usage = Usage(input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens)
    assert Decimal(raw.headers["x-fiscus-cost-usd"]) == _price("openai", "gpt-4o", usage)
    events = list(client.responses.create(model="gpt-4o", input="hello", stream=True))
    assert events[-1].type == "response.completed"
    assert gw.governor.last_event().usage.output_tokens == events[-1].response.usage.output_tokens


def test_anthropic_sync_async_stream(gw) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=200, messages=MESSAGES)
    message = raw.parse()
    usage = Usage(input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens)
    assert Decimal(raw.headers["x-fiscus-cost-usd"]) == _price("anthropic", "claude-sonnet-4-6", usage) > 0
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=200, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    event = gw.governor.last_event()
    assert event.streamed and event.usage.output_tokens == final.usage.output_tokens


async def test_anthropic_async(gw) -> None:
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
    message = await client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES)
    assert message.stop_reason in ("end_turn", "max_tokens")
    await client.close()


def test_models_health_metrics(gw, monkeypatch) -> None:
    monkeypatch.setenv("FISCUS_METRICS_TOKEN", "metrics-secret")
    models = _openai(gw).models.list()
    assert {"gpt-4o", "claude-*"} <= {m.id for m in models.data}
    with httpx.Client() as client:
        assert client.get(gw.url + "/healthz").json() == {"status": "ok"}
        _openai(gw).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        text = client.get(gw.url + "/metrics", headers={"authorization": "Bearer metrics-secret"}).text
    assert 'fiscus_requests_total{route="chat",status="200"}' in text
    assert "fiscus_cost_usd_total" in text and 'fiscus_tokens_total{type="output"}' in text
    assert 'fiscus_decisions_total{action="allow"}' in text


def test_upstream_error_is_relayed_and_recorded(gw) -> None:
    client = _openai(gw, default_headers={"x-emulator-error": "500"})
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    except openai.InternalServerError as exc:
        assert exc.response.headers["x-fiscus-cost-usd"] == "0"
    else:
        raise AssertionError("expected the upstream's 500")
    event = gw.governor.last_event()
    assert event.status == "error" and event.usage.total_tokens == 0
    assert gw.governor.reserved().nanos == 0


def test_admin_api(gw, monkeypatch) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    auth = {"authorization": "Bearer admin-secret"}
    with httpx.Client(base_url=gw.url + "/admin") as client:
        assert client.get("/keys").status_code == 401
        assert client.get("/openapi.json").status_code == 401
        assert "/keys" in client.get("/openapi.json", headers=auth).json()["paths"]
        created = client.post("/keys", json={"agent": "a1", "team": "t1", "environment": "dev"}, headers=auth)
        assert created.status_code == 201
        secret, key_id = created.json()["key"], created.json()["id"]
        assert any(k["id"] == key_id for k in client.get("/keys", headers=auth).json())
        assert client.get("/budgets", headers=auth).json()[0]["budget"] == "test"
        spend = client.get("/spend", params={"by": "team", "window": "day"}, headers=auth)
        assert spend.status_code == 200
        assert client.get("/spend", params={"by": "colour"}, headers=auth).status_code == 400
        ok = openai.OpenAI(base_url=gw.url + "/v1", api_key=secret, max_retries=0)
        ok.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert client.delete(f"/keys/{key_id}", headers=auth).json()["revoked_at"]
    try:
        ok.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    except openai.AuthenticationError:
        pass
    else:
        raise AssertionError("a revoked key must be refused")


def test_dashboard_page_is_served_without_data_and_reads_the_admin_api(gw, monkeypatch) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    with httpx.Client(base_url=gw.url + "/admin") as client:
        page = client.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "<title>fiscus — AI spend and budgets</title>" in html and "admin token" in html
        for route in ('get("finance")', "spend?by=agent&", "spend?by=day", "spend?by=agent,day", 'get("breakers")'):
            assert route in html  # the page reads these admin routes, which need the token
        paths = client.get("/openapi.json", headers={"authorization": "Bearer admin-secret"}).json()["paths"]
        assert "/dashboard" not in paths and "/openapi.json" not in paths
        assert client.get("/budgets").status_code == 401
        assert client.get("/finance").status_code == 401
