"""The bytes that start a provider request: request line, host and headers, checked so no value can start a
header or a request of its own."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_HEADERS = {"accept": "*/*", "accept-encoding": "gzip, deflate", "user-agent": "fiscus"}


@dataclass(frozen=True, slots=True)
class Target:
    origin: tuple[str, str, int]  # scheme, host, port
    head: bytes  # request line and host header
    proxied_head: bytes  # the same with the request target in absolute form, for an http:// proxy


@functools.lru_cache(maxsize=256)
def target_of(url: str, method: str = "POST") -> Target:
    """Where `url` points and how a `method` request to it starts; ValueError unless it is http(s):// with a host."""
    # Providers have a handful of URLs (one per operation, model and stream flag): split each once.
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported URL {url!r}: http:// or https:// with a host expected")
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        host = f"{host}:{port}"
    head = f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1")
    proxied = f"{method} {scheme}://{host}{path} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1")
    return Target((scheme, parts.hostname, port), head, proxied)


def request_head(start: bytes, headers: Mapping[str, str], size: int) -> bytes:
    """`start` (a `Target` head), `headers`, the defaults not among them, and the content-length."""
    lines = [f"{k}: {v}\r\n" for k, v in headers.items()]
    lines += [f"{k}: {v}\r\n" for k, v in _DEFAULT_HEADERS.items() if k not in headers]
    block = "".join(lines)
    # A CR or LF inside a name or value would start a header (or a request) of the caller's choosing.
    if block.count("\n") != len(lines) or block.count("\r") != len(lines):
        raise ValueError("header names and values must not contain CR or LF")
    return start + block.encode("latin-1") + b"content-length: %d\r\n\r\n" % size
