"""What the gateway shows without a virtual key: `/metrics` (spend by budget, breakers) and the admin OpenAPI
document need a token, closed by default; `gateway.metrics_listen` serves `/metrics` on an address of its own."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from fiscus.config import GatewayConfig
from fiscus.errors import ConfigError
from fiscus.gateway.metrics_listener import parse_listen
from tests.gateway.conftest import real_gateway

POLICY = """
version: 1
budgets:
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""
MESSAGES = [{"role": "user", "content": "hi"}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_tokens(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("FISCUS_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("FISCUS_ADMIN_TOKEN", raising=False)
    return monkeypatch


def test_metrics_and_openapi_are_closed_until_a_token_is_set(tmp_path: Path, emulator_url: str, no_tokens) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with httpx.Client(base_url=real.url) as client:
            closed = client.get("/metrics")
            assert closed.status_code == 401 and "fiscus_" not in closed.text
            assert "FISCUS_METRICS_TOKEN" in closed.json()["error"]["message"]
            assert client.get("/metrics", headers={"authorization": "Bearer guess"}).status_code == 401
            assert client.get("/admin/openapi.json").status_code == 401
            assert client.get("/admin/docs").status_code == 404  # no docs page that would need the spec openly

            no_tokens.setenv("FISCUS_METRICS_TOKEN", "m-token")
            no_tokens.setenv("FISCUS_ADMIN_TOKEN", "a-token")
            wrong = client.get("/metrics", headers={"authorization": "Bearer m-token-"})
            assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid or missing metrics token"
            for token in ("m-token", "a-token"):  # the admin token opens /metrics too
                opened = client.get("/metrics", headers={"authorization": f"Bearer {token}"})
                assert opened.status_code == 200
                assert 'fiscus_requests_total{route="chat",status="200"} 1.0' in opened.text
            assert client.get("/admin/openapi.json", headers={"authorization": "Bearer m-token"}).status_code == 401
            spec = client.get("/admin/openapi.json", headers={"authorization": "Bearer a-token"})
            assert spec.status_code == 200 and "/keys" in spec.json()["paths"]
            assert client.get("/healthz").status_code == 200  # holds nothing: stays open


def test_metrics_on_a_listen_address_of_their_own(tmp_path: Path, emulator_url: str, no_tokens) -> None:
    listen = f"127.0.0.1:{_free_port()}"
    update = {"gateway": GatewayConfig(metrics_listen=listen)}
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db", config_update=update) as real:
        real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with httpx.Client(base_url=f"http://{listen}") as client:
            scraped = client.get("/metrics")
            assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
            assert 'fiscus_requests_total{route="chat",status="200"} 1.0' in scraped.text
            assert 'fiscus_budget_utilisation{budget="growth-day"}' in scraped.text
            assert client.get("/admin/budgets").status_code == 404  # only /metrics is served there
            assert client.post("/metrics").status_code == 405
        main = httpx.get(real.url + "/metrics")
        assert main.status_code == 401 and listen in main.json()["error"]["message"]


@pytest.mark.parametrize("address", ["9464", "localhost:", ":9464", "host:port", "[::1]:70000"])
def test_a_malformed_listen_address_is_a_config_error(address: str) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.metrics_listen"):
        parse_listen(address)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
