"""The wire of a call routed out of its family (`fiscus.sdk.across`): the client's own method, called on a copy of
the client whose transport translates the request it would send into the other provider's format, sends it to
that provider with its credentials, and translates the answer back (a whole body, an error, or a stream, chunk by
chunk) — so the SDK parses the answer into its own objects, and the SDK's usage readers see the same usage the
gateway reads from a translated answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import UpstreamRequest
from fiscus.providers.translate import Translation, Untranslatable, translation
from fiscus.sdk.across import OPERATION, OTHER
from fiscus.sdk.exchange import _SDK_PATHS, _http
from fiscus.usage.wire import WireFormat


def _outgoing(fmt: WireFormat, endpoint: Endpoint, body: bytes) -> tuple[Translation, str, dict[str, str], bytes, bool]:
    """(translation, url, headers, body, stream) for the other provider."""
    target = OTHER[fmt][1]
    translated = translation(OPERATION[fmt], target, body)  # type: ignore[arg-type]
    parsed = orjson.loads(body)
    model, stream = str(parsed.get("model", "")), bool(parsed.get("stream"))
    sent = translated.request(body, model)
    url = endpoint.url(target, model, stream)  # type: ignore[arg-type]
    headers = endpoint.headers(UpstreamRequest(endpoint.name, target, model, sent, stream=stream))  # type: ignore[arg-type]
    return translated, url, headers, sent, stream


def _timeout(http: Any, endpoint: Endpoint) -> Any:
    return http.Timeout(endpoint.config.timeout_read_s, connect=endpoint.config.timeout_connect_s)


def _translated(http: Any, translated: Translation, status: int, body: bytes, request: Any) -> Any:
    content = translated.response(body) if 200 <= status < 300 else translated.error(status, body)
    return http.Response(status, headers={"content-type": "application/json"}, content=content, request=request)


def _sse(answer: Any, http_client: Any, translated: Translation) -> Iterator[bytes]:
    reader = translated.stream()
    try:
        for data in answer.iter_raw():
            out = reader.feed(data)
            if out:
                yield out
        tail = reader.close()
        if tail:
            yield tail
    finally:
        answer.close()
        http_client.close()


async def _asse(answer: Any, http_client: Any, translated: Translation) -> AsyncIterator[bytes]:
    reader = translated.stream()
    try:
        async for data in answer.aiter_raw():
            out = reader.feed(data)
            if out:
                yield out
        tail = reader.close()
        if tail:
            yield tail
    finally:
        await answer.aclose()
        await http_client.aclose()


def crossed_resource(client: Any, fmt: WireFormat, endpoint: Endpoint, is_async: bool) -> Any:
    """The format's resource (e.g. `client.chat.completions`) on a copy of `client` whose requests go to
    `endpoint`, translated both ways. A request the translation cannot carry is refused before any call, in the
    client's error format (a 400 the SDK raises as its own)."""
    http = _http(client)

    def untranslatable(request: Any, exc: Untranslatable) -> Any:
        kind = "invalid_request_error"
        if fmt is WireFormat.ANTHROPIC:
            body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": str(exc)}}
        else:
            body = {"error": {"message": str(exc), "type": kind, "param": None, "code": None}}
        return http.Response(
            400, headers={"content-type": "application/json"}, content=orjson.dumps(body), request=request
        )

    class Sync(http.BaseTransport):  # type: ignore[misc,name-defined]
        def handle_request(self, request: Any) -> Any:
            try:
                translated, url, headers, sent, stream = _outgoing(fmt, endpoint, request.read())
            except Untranslatable as exc:
                return untranslatable(request, exc)
            sender = http.Client(timeout=_timeout(http, endpoint))
            try:
                answer = sender.send(sender.build_request("POST", url, headers=headers, content=sent), stream=stream)
            except BaseException:
                sender.close()
                raise
            if not stream or not 200 <= answer.status_code < 300:
                try:
                    return _translated(http, translated, answer.status_code, answer.read(), request)
                finally:
                    sender.close()
            headers = {"content-type": "text/event-stream"}
            return http.Response(200, headers=headers, content=_sse(answer, sender, translated), request=request)

    class Async(http.AsyncBaseTransport):  # type: ignore[misc,name-defined]
        async def handle_async_request(self, request: Any) -> Any:
            try:
                translated, url, headers, sent, stream = _outgoing(fmt, endpoint, await request.aread())
            except Untranslatable as exc:
                return untranslatable(request, exc)
            sender = http.AsyncClient(timeout=_timeout(http, endpoint))
            try:
                built = sender.build_request("POST", url, headers=headers, content=sent)
                answer = await sender.send(built, stream=stream)
            except BaseException:
                await sender.aclose()
                raise
            if not stream or not 200 <= answer.status_code < 300:
                try:
                    return _translated(http, translated, answer.status_code, await answer.aread(), request)
                finally:
                    await sender.aclose()
            headers = {"content-type": "text/event-stream"}
            content = _asse(answer, sender, translated)
            return http.Response(200, headers=headers, content=content, request=request)

    if is_async:
        copy = client.with_options(http_client=http.AsyncClient(transport=Async()), max_retries=0)
    else:
        copy = client.with_options(http_client=http.Client(transport=Sync()), max_retries=0)
    resource = copy
    for name in _SDK_PATHS[fmt]:
        resource = getattr(resource, name)
    return resource
