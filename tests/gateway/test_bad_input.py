"""Bad requests get a 4xx in the client's own error format naming the fault, nothing stays reserved, and a
client that drops mid-stream still has its call settled (estimated usage) and its reservation released."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import httpx
import orjson
import pytest

from tests.gateway.conftest import serve

GOOD_CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

CASES = [
    ("/v1/chat/completions", b"{not json", 400, "valid JSON"),
    ("/v1/chat/completions", b"[1, 2]", 400, "JSON object"),
    ("/v1/chat/completions", orjson.dumps({"messages": GOOD_CHAT["messages"]}), 400, "'model'"),
    ("/v1/chat/completions", orjson.dumps({"model": 5, "messages": []}), 400, "'model'"),
    ("/v1/chat/completions", orjson.dumps({"model": "gpt-4o"}), 400, "'messages'"),
    ("/v1/chat/completions", orjson.dumps({**GOOD_CHAT, "stream": "yes"}), 400, "'stream'"),
    ("/v1/chat/completions", orjson.dumps({**GOOD_CHAT, "max_tokens": -3}), 400, "'max_tokens'"),
    ("/v1/chat/completions", orjson.dumps({**GOOD_CHAT, "n": 3}), 400, "'n'"),
    ("/v1/chat/completions", orjson.dumps({**GOOD_CHAT, "model": "no-such-model"}), 404, "no-such-model"),
    ("/v1/responses", orjson.dumps({"model": "gpt-4o"}), 400, "'input'"),
    ("/v1/chat/completions", b'{"model":"gpt-4o","messages":[' + b"[" * 200 + b"]" * 200 + b"]}", 400, "nested deeper"),
    ("/v1/responses", orjson.dumps({"model": "gpt-4o", "input": "x", "background": True}), 400, "background"),
    (
        "/v1/messages",
        orjson.dumps({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]}),
        400,
        "max_tokens",
    ),
    ("/v1/messages", orjson.dumps({**GOOD_CHAT, "max_tokens": 5}), 404, "gpt-4o"),
    ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": [], "pad": "' + b"x" * 300_000 + b'"}', 413, "limit"),
]


def _check_error(path: str, response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and words in body["error"]["message"]
    else:
        assert body["error"]["type"] in ("invalid_request_error",) and words in body["error"]["message"]


@pytest.fixture(scope="module")
def small(tmp_path_factory, emulator_url):
    tmp = tmp_path_factory.mktemp("bad-input")
    gen = serve(tmp, emulator_url, f"sqlite:///{tmp}/budget.db", max_body_bytes=200_000)
    yield next(gen)
    next(gen, None)


@pytest.mark.parametrize(("path", "body", "status", "words"), CASES)
def test_bad_request_matrix(small, path: str, body: bytes, status: int, words: str) -> None:
    headers = {"authorization": f"Bearer {small.key}", "content-type": "application/json"}
    with httpx.Client(base_url=small.url) as client:
        _check_error(path, client.post(path, content=body, headers=headers), status, words)
        # The same oversized body streamed without a content-length is cut off while reading.
        if status == 413:
            chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
            _check_error(path, client.post(path, content=chunks, headers=headers), 413, words)
    assert small.governor.reserved() == type(small.governor.reserved())()


def test_bad_priority_header(small) -> None:
    with httpx.Client(base_url=small.url) as client:
        response = client.post(
            "/v1/chat/completions",
            json=GOOD_CHAT,
            headers={"authorization": f"Bearer {small.key}", "x-fiscus-priority": "urgent"},
        )
    assert response.status_code == 400 and "x-fiscus-priority" in response.json()["error"]["message"]


@pytest.mark.parametrize("key", [None, "sk-wrong", "fk-" + "0" * 40])
def test_missing_or_wrong_key_is_401_in_each_format(small, key: str | None) -> None:
    with httpx.Client(base_url=small.url) as client:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        chat = client.post("/v1/chat/completions", json=GOOD_CHAT, headers=headers)
        assert chat.status_code == 401 and chat.json()["error"]["code"] == "invalid_api_key"
        headers = {} if key is None else {"x-api-key": key}
        msg = client.post("/v1/messages", json={**GOOD_CHAT, "max_tokens": 5}, headers=headers)
        assert msg.status_code == 401 and msg.json()["error"]["type"] == "authentication_error"


def test_client_disconnect_mid_stream_settles_and_releases(small) -> None:
    before = len(small.governor.events)
    url = urlparse(small.url)
    body = orjson.dumps({**GOOD_CHAT, "stream": True})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {url.hostname}\r\nauthorization: Bearer {small.key}\r\n"
        f"content-type: application/json\r\nx-emulator-reply-tokens: 400\r\nx-emulator-token-latency-ms: 5\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"data: ") < 3:
            received += sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 5
    while len(small.governor.events) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    event = small.governor.events[-1]
    assert event.usage.estimated and event.usage.output_tokens > 0 and event.cost.total > 0
    assert event.status == "error" and "disconnected" in (event.error or "")
    assert small.governor.reserved().nanos == 0


def test_upstream_cut_stream_is_estimated(small) -> None:
    with httpx.Client(base_url=small.url) as client:
        response = client.post(
            "/v1/chat/completions",
            json={**GOOD_CHAT, "stream": True},
            headers={"authorization": f"Bearer {small.key}", "x-emulator-stream-cut": "3"},
        )
    assert response.status_code == 200
    event = small.governor.events[-1]
    assert event.usage.estimated and event.streamed
    assert small.governor.reserved().nanos == 0
