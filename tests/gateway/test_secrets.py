"""No secret leaks: a full gateway run — answered, streamed and refused calls, a bad key, an
upstream failure, an exhausted budget, the admin API and /metrics —
then every output is searched for every secret it used: the provider key, the virtual keys, the admin and metrics
tokens. Outputs: every response (status line, headers, body; only the one that creates a key
may show that key), every log record (uvicorn's too), the process's stdout and stderr, every file the run wrote
(ledger, budget store, key store, post-mortems)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from fiscus.config import ProviderConfig
from fiscus.guards.settings import GuardsConfig
from fiscus.providers import make_endpoint
from tests.gateway.conftest import UPSTREAM_KEY_ENV, real_gateway

POLICY = """
version: 1
budgets:
  - name: growth-calls
    scope: {team: growth}
    window: day
    limit: {requests: 6}
    thresholds:
      - {at: 1.0, action: block, override: true}
"""
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarise the open tickets."}]}
TOPICS = iter(f"Summarise the open tickets of queue {n}." for n in range(1000))


def chat(**fields: object) -> dict[str, object]:
    """A chat body with a prompt of its own: the same prompt again and again would be stopped as a loop."""
    return {**CHAT, "messages": [{"role": "user", "content": next(TOPICS)}], **fields}


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):  # the test's own client, not the gateway
            self.text.append(logging.Formatter().format(record))  # message, and the traceback when there is one


@pytest.fixture
def logs() -> Iterator[Everything]:
    handler = Everything()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, saved, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _dump(response: httpx.Response) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return f"{response.status_code}\n{head}\n{response.text}"


def test_a_full_run_leaves_no_secret_in_any_output(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], logs
) -> None:
    tag = uuid.uuid4().hex[:10]
    secrets = {
        "provider key": f"sk-provider-{tag}-do-not-leak",
        "admin token": f"admin-{tag}-do-not-leak",
        "metrics token": f"metrics-{tag}-do-not-leak",
    }
    monkeypatch.setenv(UPSTREAM_KEY_ENV, secrets["provider key"])
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", secrets["admin token"])
    monkeypatch.setenv("FISCUS_METRICS_TOKEN", secrets["metrics token"])
    update = {"guards": GuardsConfig(postmortem_dir=tmp_path / "postmortems")}
    outputs: list[str] = []
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db", config_update=update) as real:
        secrets["virtual key"] = real.key
        admin = {"authorization": f"Bearer {secrets['admin token']}"}
        with httpx.Client(base_url=real.url, timeout=30) as client:
            created = client.post(
                "/admin/keys", json={"agent": "a2", "team": "t2", "environment": "dev"}, headers=admin
            )
            assert created.status_code == 201
            secrets["second virtual key"] = created.json()["key"]
            outputs.append(_dump(created).replace(secrets["second virtual key"], "<shown once, by design>"))
            session = {"authorization": f"Bearer {real.key}", "x-fiscus-session": f"s-{tag}"}
            calls = [
                client.post("/v1/chat/completions", json=chat(), headers=session),
                client.post("/v1/chat/completions", json=chat(stream=True), headers=session),
                client.post(
                    "/v1/messages",
                    json={"model": "claude-haiku-4-5", "max_tokens": 20, "messages": CHAT["messages"]},
                    headers={"x-api-key": real.key, "x-fiscus-session": f"s-{tag}", "anthropic-version": "2023-06-01"},
                ),
                client.post("/v1/chat/completions", json=chat(), headers={**session, "x-emulator-error": "401"}),
                client.post("/v1/chat/completions", json=chat(), headers={**session, "x-emulator-error": "500"}),
                client.post("/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {real.key}x"}),
                client.post("/v1/chat/completions", json=chat(), headers={"x-api-key": secrets["admin token"]}),
            ]
            calls += [client.post("/v1/chat/completions", json=chat(), headers=session) for _ in range(3)]
            statuses = [c.status_code for c in calls]
            assert statuses[:3] == [200, 200, 200] and statuses[5:7] == [401, 401] and 429 in statuses, statuses
            second = {"authorization": f"Bearer {secrets['second virtual key']}"}
            calls.append(client.post("/v1/chat/completions", json=chat(), headers=second))
            calls += [
                client.get("/admin/keys", headers=admin),
                client.get("/admin/budgets", headers=admin),
                client.get("/admin/breakers", headers=admin),
                client.get("/admin/spend", params={"by": "agent"}, headers=admin),
                client.get("/admin/keys", headers={"authorization": f"Bearer {secrets['metrics token']}"}),
                client.get("/admin/openapi.json", headers=admin),
                client.get("/metrics", headers={"authorization": f"Bearer {secrets['metrics token']}"}),
                client.get("/metrics", headers={"authorization": f"Bearer {secrets['admin token']}x"}),
            ]
            assert calls[-2].status_code == 200 and "fiscus_requests_total" in calls[-2].text
        outputs += [_dump(response) for response in calls]
        events = real.events()  # the ledger is flushed
    assert len(events) >= 9 and any(e.status == "blocked" for e in events)
    outputs += logs.text
    captured = capfd.readouterr()
    outputs += [captured.out, captured.err]
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path.name != "policy.yaml"]
    assert {p.name for p in written} >= {"ledger.db", "budget.db", "keys.db"}
    files = {str(path): path.read_bytes() for path in written}
    for name, secret in secrets.items():
        assert not [text[:200] for text in outputs if secret in text], f"{name} in a response, a log or stdio"
        assert not [path for path, data in files.items() if secret.encode() in data], f"{name} in a file"


def test_a_provider_that_echoes_its_key_has_it_redacted() -> None:
    config = ProviderConfig(kind="openai", base_url="https://api.openai.com/v1", api_key_env="K")
    endpoint = make_endpoint("openai", config, {"K": "sk-live-0123456789"})
    body = orjson.dumps({"error": {"message": "Incorrect API key provided: sk-live-0123456789."}})
    assert endpoint.redact(body) == orjson.dumps({"error": {"message": "Incorrect API key provided: [redacted]."}})
    assert endpoint.redact(b'{"error":"other"}') == b'{"error":"other"}'
    assert "sk-live" not in repr(endpoint)
