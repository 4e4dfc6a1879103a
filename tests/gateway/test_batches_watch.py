"""A batch nobody polls is settled by the gateway's own poll; hostile input to the batch endpoints is answered in
the provider's format, never a 5xx, and holds nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from fiscus.config import GatewayConfig
from fiscus.events.cost_event import CallStatus
from tests.gateway.conftest import real_gateway
from tests.gateway.test_batches_anthropic import params
from tests.gateway.test_batches_openai import POLICY, reserved_nanos, spent_nanos


def test_an_unpolled_batch_is_settled_by_the_gateway(tmp_path: Path, emulator_url: str) -> None:
    update = {"gateway": GatewayConfig(batch_poll_s=0.2)}
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/b.db", config_update=update) as real:
        client = real.anthropic()
        client.messages.batches.create(requests=[{"custom_id": c, "params": params(c)} for c in "pq"])  # type: ignore[misc]
        assert reserved_nanos(real) > 0
        deadline = time.monotonic() + 10
        while reserved_nanos(real) and time.monotonic() < deadline:
            time.sleep(0.1)
        events = real.events()
        assert sorted(e.tags["custom_id"] for e in events) == ["p", "q"]
        assert all(e.status is CallStatus.OK and e.cost.total > 0 for e in events)
        assert reserved_nanos(real) == 0 and spent_nanos(real) > 0


def test_hostile_batch_requests_are_4xx_in_the_providers_format(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/b.db") as real:
        openai_auth = {"authorization": f"Bearer {real.key}"}
        claude_auth = {"x-api-key": real.key, "anthropic-version": "2023-06-01"}
        cases = [
            ("POST", "/v1/files", openai_auth, b"not multipart"),
            ("POST", "/v1/batches", openai_auth, b"[1, 2]"),
            ("POST", "/v1/batches", openai_auth, b'{"endpoint": "/v1/chat/completions", "input_file_id": "file-x"}'),
            ("GET", "/v1/batches/batch_..%2f..", openai_auth, b""),
            ("POST", "/v1/batches/none/cancel", openai_auth, b""),
            ("GET", "/v1/files/file-none/content", openai_auth, b""),
            ("POST", "/v1/batches", {}, b"{}"),
            ("POST", "/v1/messages/batches", claude_auth, b"{"),
            ("POST", "/v1/messages/batches", claude_auth, b'{"requests": [{"custom_id": "a", "params": []}]}'),
            ("POST", "/v1/messages/batches", claude_auth, b'{"requests": [{"custom_id": 5, "params": {}}]}'),
            ("GET", "/v1/messages/batches/msgbatch_x/results", claude_auth, b""),
            ("POST", "/v1/messages/batches/msgbatch_x/cancel", claude_auth, b""),
        ]
        for method, path, headers, body in cases:
            answer = httpx.request(method, real.url + path, headers=headers, content=body)
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            error = answer.json()
            if path.startswith("/v1/messages"):
                assert error["type"] == "error" and error["error"]["message"], path
            else:
                assert error["error"]["message"], path
        assert reserved_nanos(real) == 0 and real.events() == []


def test_a_large_batch_settles_after_the_poll_that_found_it_ended(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fiscus.gateway.batches.INLINE_REQUESTS", 1)  # two requests count as large here
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/b.db") as real:
        client = real.anthropic()
        batch = client.messages.batches.create(requests=[{"custom_id": c, "params": params(c)} for c in "uv"])  # type: ignore[misc]
        deadline = time.monotonic() + 10
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while reserved_nanos(real) and time.monotonic() < deadline:
            time.sleep(0.05)  # settling in the background, after the poll answered
        events = real.events()
        assert sorted(e.tags["custom_id"] for e in events) == ["u", "v"] and reserved_nanos(real) == 0
        list(client.messages.batches.results(batch.id))
        assert len(real.events()) == 2
