"""Hostile requests to every gateway endpoint, through real sockets: never a 5xx, never a traceback in the logs,
every refusal in the provider's own error format, and nothing left reserved afterwards."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import raw_http
from tests.fuzz.conftest import FUZZ, METRICS_TOKEN, LogWatch, held
from tests.fuzz.hostile import CHAT_BODIES, MESSAGES_BODIES, RESPONSES_BODIES, fiscus_headers, raw_bodies

ANTHROPIC_ERRORS = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
}
ENDPOINTS = {
    "/v1/chat/completions": CHAT_BODIES,
    "/v1/responses": RESPONSES_BODIES,
    "/v1/messages": MESSAGES_BODIES,
}


def check_answer(path: str, answer: raw_http.RawAnswer) -> None:
    """No 5xx; a refusal the gateway wrote is in the provider's error format (Anthropic's for /v1/messages)."""
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status < 400 or answer.from_server:
        return
    body = orjson.loads(answer.body)
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] in ANTHROPIC_ERRORS, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    else:
        error = body["error"]
        assert set(error) >= {"message", "type", "param", "code"} and error["message"], body


@pytest.fixture
def clean(target: Any, watch: LogWatch) -> Any:
    real, address = target
    yield real, address
    logged = watch.lines()
    watch.bad.clear()  # one test's failure is reported once, not again by every later test of the module
    assert logged == []
    assert held(real) == []


def _auth(key: str, path: str) -> list[tuple[bytes, bytes]]:
    if path == "/v1/messages":
        return [(b"x-api-key", key.encode()), (b"anthropic-version", b"2023-06-01")]
    return [(b"authorization", f"Bearer {key}".encode())]


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_hostile_bodies_and_headers(clean: Any, path: str) -> None:
    real, address = clean

    @FUZZ
    @given(body=raw_bodies(ENDPOINTS[path]), headers=fiscus_headers, content_type=st.sampled_from([True, False]))
    def run(body: bytes, headers: list[tuple[bytes, bytes]], content_type: bool) -> None:
        sent = _auth(real.key, path) + headers
        if content_type:
            sent.append((b"content-type", b"application/json"))
        check_answer(path, raw_http.send(address, "POST", path, sent, body))

    run()


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_hostile_requests_without_a_valid_key(clean: Any, path: str) -> None:
    real, address = clean

    @FUZZ
    @given(
        body=raw_bodies(ENDPOINTS[path]),
        key=st.sampled_from(["", "sk-nope", "fk-" + "0" * 40, "x" * 5000, real.key[:-1], real.key + "x"]),
        header=st.sampled_from([b"authorization", b"x-api-key"]),
        scheme=st.sampled_from([b"Bearer ", b"bearer ", b"Basic ", b""]),
    )
    def run(body: bytes, key: str, header: bytes, scheme: bytes) -> None:
        value = (scheme if header == b"authorization" else b"") + key.encode()
        answer = raw_http.send(address, "POST", path, [(header, value)], body)
        check_answer(path, answer)
        assert answer.status in (400, 401) or answer.from_server

    run()


@FUZZ
@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST", "OPTIONS"]),
    path=st.sampled_from(
        ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/models", "/v1/nope", "/healthz", "/metrics"]
    )
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%0123456789", max_size=30).map(lambda p: "/v1/" + p),
    token=st.sampled_from([None, METRICS_TOKEN, "wrong", ""]),
)
def test_every_route_and_method(clean: Any, method: str, path: str, token: str | None) -> None:
    _, address = clean
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    answer = raw_http.send(address, method, path, headers, b"")
    check_answer(path, answer)
    if path == "/metrics" and method == "GET":
        assert answer.status == (200 if token == METRICS_TOKEN else 401)


def test_ten_megabyte_bodies_are_refused_whole_and_streamed(clean: Any) -> None:
    real, address = clean
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' + b"x" * (10 << 20) + b'"}]}'
    for path in ENDPOINTS:
        declared = raw_http.send(address, "POST", path, _auth(real.key, path), body)
        check_answer(path, declared)
        assert declared.status == 413
        chunked = raw_http.send(
            address, "POST", path, [*_auth(real.key, path), (b"transfer-encoding", b"chunked")], _chunked(body)
        )
        check_answer(path, chunked)
        assert chunked.status == 413


def test_a_lying_content_length_is_refused(clean: Any) -> None:
    real, address = clean
    for value in (b"-1", b"abc", b"1e3", b"99999999999999999999999"):
        answer = raw_http.send(
            address, "POST", "/v1/chat/completions", [*_auth(real.key, "/v1/chat"), (b"content-length", value)], b"{}"
        )
        check_answer("/v1/chat/completions", answer)
        assert answer.status in (400, 413)


def _chunked(body: bytes, size: int = 1 << 20) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"
