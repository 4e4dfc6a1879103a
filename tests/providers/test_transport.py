"""The HTTP/1.1 client under the providers, against a raw socket server that answers exactly the bytes a test gives:
framing (content-length, chunked, until close), keep-alive reuse, encodings, timeouts, broken answers."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from fiscus.providers.transport import BrokenAnswer, ConnectFailed, ReadTimedOut, Timeouts, Transport

FAST = Timeouts(connect_s=2.0, read_s=2.0)
Answer = Callable[[int, asyncio.StreamWriter], object]


class RawServer:
    """Reads each request (head and content-length body), records it and lets `answer` write the reply."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                result = self.answer(len(self.requests), writer)
                if asyncio.iscoroutine(result):
                    result = await result
                await writer.drain()
                if result == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> RawServer:
        raw = RawServer(answer)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append(server)
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat?x=1"
        return raw

    yield start
    for server in servers:
        server.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body),
        b"".join(h + b"\r\n" for h in extra),
        body,
    )


async def fetch(transport: Transport, url: str, body: bytes = b'{"a":1}') -> tuple[int, dict[str, str], bytes]:
    answer = await transport.open(url, {"authorization": "Bearer k", "content-type": "application/json"}, body, FAST)
    try:
        return answer.status, answer.headers, await answer.read()
    finally:
        answer.close()


async def test_content_length_answers_reuse_one_connection(serve) -> None:
    server = await serve(lambda n, w: w.write(ok(b'{"n":%d}' % n, b"x-request-id: r%d" % n)))
    transport = Transport()
    try:
        for n in (1, 2, 3):
            status, headers, body = await fetch(transport, server.url)
            assert (status, body, headers["x-request-id"]) == (200, b'{"n":%d}' % n, f"r{n}")
            assert "content-length" not in headers and headers["content-type"] == "application/json"
    finally:
        await transport.aclose()
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"authorization: Bearer k\r\n" in request and request.endswith(b'content-length: 7\r\n\r\n{"a":1}')


async def test_chunked_answer_streams_chunk_by_chunk(serve) -> None:
    release = asyncio.Event()

    async def answer(n: int, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
        writer.write(b"7\r\ndata: 1\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"9\r\n\n\ndata: 2\r\n2\r\n\n\n\r\n0\r\n\r\n")

    server = await serve(answer)
    transport = Transport()
    try:
        answer_ = await transport.open(server.url, {}, b"{}", FAST)
        assert answer_.status == 200 and "transfer-encoding" not in answer_.headers
        first = await answer_.read_chunk()
        assert first == b"data: 1"  # handed over before the rest exists
        release.set()
        rest = await answer_.read()
        assert first + rest == b"data: 1\n\ndata: 2\n\n"
        answer_.close()
        assert (await fetch(transport, server.url))[0] == 200  # the connection went back to the pool
    finally:
        await transport.aclose()
    assert server.connections == 1


async def test_an_answer_without_length_ends_with_the_connection(serve) -> None:
    def answer(n: int, writer: asyncio.StreamWriter) -> str:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthe whole body")
        return "close"

    server = await serve(answer)
    transport = Transport()
    try:
        assert (await fetch(transport, server.url))[2] == b"the whole body"
        assert (await fetch(transport, server.url))[2] == b"the whole body"
    finally:
        await transport.aclose()
    assert server.connections == 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_answers_are_decoded(serve, encoding: str) -> None:
    body = b'{"text":"' + b"hello " * 500 + b'"}'
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    server = await serve(lambda n, w: w.write(ok(packed, b"content-encoding: " + encoding.encode())))
    transport = Transport()
    try:
        _, headers, got = await fetch(transport, server.url)
    finally:
        await transport.aclose()
    assert got == body and "content-encoding" not in headers
    assert b"accept-encoding: gzip, deflate\r\n" in server.requests[0]


async def test_a_large_body_is_sent_whole(serve) -> None:
    server = await serve(lambda n, w: w.write(ok(b"{}")))
    transport = Transport()
    big = b'{"p":"' + b"x" * 300_000 + b'"}'
    try:
        assert (await fetch(transport, server.url, big))[0] == 200
    finally:
        await transport.aclose()
    assert server.requests[0].endswith(big)


async def test_silence_before_the_answer_is_a_read_timeout(serve) -> None:
    async def answer(n: int, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1)

    server = await serve(answer)
    transport = Transport()
    try:
        with pytest.raises(ReadTimedOut):
            await transport.open(server.url, {}, b"{}", Timeouts(2.0, 0.1))
    finally:
        await transport.aclose()


async def test_silence_mid_body_is_a_read_timeout(serve) -> None:
    async def answer(n: int, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        await writer.drain()
        await asyncio.sleep(1)

    server = await serve(answer)
    transport = Transport()
    try:
        answer_ = await transport.open(server.url, {}, b"{}", Timeouts(2.0, 0.1))
        assert await answer_.read_chunk() == b"half"
        with pytest.raises(ReadTimedOut):
            await answer_.read_chunk()
        answer_.close()
    finally:
        await transport.aclose()


async def test_a_body_cut_short_is_a_broken_answer(serve) -> None:
    def answer(n: int, writer: asyncio.StreamWriter) -> str:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        return "close"

    server = await serve(answer)
    transport = Transport()
    try:
        with pytest.raises(BrokenAnswer):
            await fetch(transport, server.url)
    finally:
        await transport.aclose()


async def test_no_answer_at_all_is_a_connect_failure(serve) -> None:
    server = await serve(lambda n, w: "close")
    transport = Transport()
    try:
        with pytest.raises(ConnectFailed, match="before answering"):
            await transport.open(server.url, {}, b"{}", FAST)
    finally:
        await transport.aclose()


async def test_garbage_is_a_connect_failure(serve) -> None:
    server = await serve(lambda n, w: w.write(b"SMTP ready\r\n\r\n"))
    transport = Transport()
    try:
        with pytest.raises(ConnectFailed):
            await transport.open(server.url, {}, b"{}", FAST)
    finally:
        await transport.aclose()


async def test_refused_connection_is_a_connect_failure() -> None:
    transport = Transport()
    try:
        with pytest.raises(ConnectFailed, match=r"cannot connect to 127\.0\.0\.1:9"):
            await transport.open("http://127.0.0.1:9/v1", {}, b"{}", FAST)
    finally:
        await transport.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(serve) -> None:
    def answer(n: int, writer: asyncio.StreamWriter) -> str:
        writer.write(ok(b"{}"))
        return "close"  # keep-alive announced, then closed anyway (as an idle timeout does)

    server = await serve(answer)
    transport = Transport()
    try:
        assert (await fetch(transport, server.url))[0] == 200
        await asyncio.sleep(0.05)
        assert (await fetch(transport, server.url))[0] == 200
    finally:
        await transport.aclose()
    assert server.connections == 2


async def test_header_injection_is_refused(serve) -> None:
    server = await serve(lambda n, w: w.write(ok(b"{}")))
    transport = Transport()
    try:
        with pytest.raises(ValueError, match="CR or LF"):
            await transport.open(server.url, {"anthropic-beta": "x\r\nx-evil: 1"}, b"{}", FAST)
    finally:
        await transport.aclose()
    assert server.requests == []


async def test_the_per_host_limit_queues_calls(serve) -> None:
    async def answer(n: int, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.02)
        writer.write(ok(b"{}"))

    server = await serve(answer)
    transport = Transport(max_connections=10, max_per_host=2)
    try:
        results = await asyncio.gather(*(fetch(transport, server.url) for _ in range(6)))
    finally:
        await transport.aclose()
    assert [r[0] for r in results] == [200] * 6
    assert server.connections == 2
