"""Opening a connection to a provider: directly or through an HTTP proxy, and TLS that verifies the provider's
certificate and host name against the system's CAs or a configured CA bundle.

Proxies come from the environment as corporate networks set them: `HTTPS_PROXY` for https:// providers, reached
through a CONNECT tunnel (TLS runs end to end inside it: the proxy sees only the host name), `HTTP_PROXY` for
http:// ones (requests in absolute form), `NO_PROXY` for the hosts reached directly (names match themselves and
their subdomains; IP addresses and CIDR ranges; an optional `:port`; `*` for all). Lower-case names win over
upper-case ones. Loopback hosts are never proxied. A proxy URL's user and password go in `Proxy-Authorization`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from fiscus.errors import ConfigError

_MAX_PROXY_REPLY = 16 * 1024


class DialError(Exception):
    """No connection: the reason, fit for an error message (never a proxy's credentials)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # `Proxy-Authorization` value, kept out of repr

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_proxy(url: str, variable: str) -> Proxy:
    """A proxy from an `HTTP(S)_PROXY` value (`http://[user:password@]host[:port]`; no scheme means http)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme.lower() != "http":
        raise ConfigError(f"{variable}: only http:// proxies are supported, not {parts.scheme}://")
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigError(f"{variable}: invalid port in the proxy URL") from None
    if not parts.hostname:
        raise ConfigError(f"{variable}: the proxy URL has no host")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bypassed(entry: str, host: str, port: int) -> bool:
    """Whether one `NO_PROXY` entry covers host:port."""
    if entry == "*":
        return True
    name, want_port = entry, None
    if entry.startswith("["):  # [v6]:port
        name, _, rest = entry[1:].partition("]")
        want_port = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:
        name, want_port = entry.split(":")
    if want_port is not None and want_port != str(port):
        return False
    try:
        network = ipaddress.ip_network(name, strict=False)
    except ValueError:
        network = None
    if network is not None:
        try:
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False
    name = name.lstrip("*").lstrip(".").lower()
    return bool(name) and (host == name or host.endswith("." + name))


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Which proxy, if any, serves each origin."""

    https: Proxy | None = None
    http: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxySettings:
        def read(name: str) -> tuple[str, str] | None:
            for variable in (name.lower(), name.upper()):
                value = env.get(variable, "").strip()
                if value:
                    return variable, value
            return None

        https, http, bypass = read("https_proxy"), read("http_proxy"), read("no_proxy")
        return cls(
            https=parse_proxy(https[1], https[0]) if https else None,
            http=parse_proxy(http[1], http[0]) if http else None,
            no_proxy=tuple(e.strip().lower() for e in bypass[1].split(",") if e.strip()) if bypass else (),
        )

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        host = host.lower()
        if proxy is None or _is_loopback(host) or any(_bypassed(e, host, port) for e in self.no_proxy):
            return None
        return proxy


@functools.lru_cache(maxsize=16)
def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """Verifies certificates and host names: against `ca_bundle` (a PEM file) when given, else the system's CAs
    (which honour `SSL_CERT_FILE` / `SSL_CERT_DIR`). ConfigError when the bundle cannot be loaded."""
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(f"cannot load the CA bundle {ca_bundle} ({reason})") from None


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last or OSError(f"no address for {host}")


async def tunnel(loop: asyncio.AbstractEventLoop, proxy: Proxy, host: str, port: int) -> socket.socket:
    """A socket to `proxy` on which CONNECT host:port succeeded: bytes written now reach the provider."""
    try:
        sock = await _open_socket(loop, proxy.host, proxy.port)
    except OSError as exc:
        raise DialError(f"cannot connect to the proxy {proxy.address} ({exc.strerror or exc})") from None
    try:
        authority = _authority(host, port)
        lines = [f"CONNECT {authority} HTTP/1.1", f"host: {authority}"]
        if proxy.authorization:
            lines.append(f"proxy-authorization: {proxy.authorization}")
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise DialError(f"the proxy {proxy.address} closed the connection before answering CONNECT")
            reply += chunk
            if len(reply) > _MAX_PROXY_REPLY:
                raise DialError(f"the proxy {proxy.address} sent an oversized answer to CONNECT")
        status_line = reply.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or parts[1] != "200":
            raise DialError(f"the proxy {proxy.address} refused the tunnel to {authority}: {status_line[:200]!r}")
        if not reply.endswith(b"\r\n\r\n"):  # bytes before our TLS hello: not a tunnel to trust
            raise DialError(f"the proxy {proxy.address} sent data into the tunnel before it was used")
    except OSError as exc:
        sock.close()
        raise DialError(f"the proxy {proxy.address} failed during CONNECT ({exc.strerror or exc})") from None
    except BaseException:
        sock.close()
        raise
    return sock


async def dial(
    loop: asyncio.AbstractEventLoop,
    protocol: asyncio.Protocol,
    origin: tuple[str, str, int],
    *,
    proxy: Proxy | None,
    ca_bundle: str | None,
) -> None:
    """Connect `protocol` to `origin` (scheme, host, port): through `proxy` when given (a CONNECT tunnel for
    https, the proxy itself for http), TLS verified for https. DialError with the reason when it cannot."""
    scheme, host, port = origin
    context = tls_context(ca_bundle) if scheme == "https" else None
    try:
        if proxy is None:
            await loop.create_connection(
                lambda: protocol, host, port, ssl=context, server_hostname=host if context else None
            )
        elif context is None:
            await loop.create_connection(lambda: protocol, proxy.host, proxy.port)
        else:
            sock = await tunnel(loop, proxy, host, port)
            try:
                await loop.create_connection(lambda: protocol, sock=sock, ssl=context, server_hostname=host)
            except BaseException:
                sock.close()
                raise
    except ssl.SSLCertVerificationError as exc:
        raise DialError(f"TLS certificate of {host} not trusted: {exc.verify_message or exc.reason}") from None
    except ssl.SSLError as exc:
        raise DialError(f"TLS handshake with {host} failed ({exc.reason or type(exc).__name__})") from None
    except OSError as exc:
        where = f"the proxy {proxy.address}" if proxy is not None and context is None else f"{host}:{port}"
        raise DialError(f"cannot connect to {where} ({exc.strerror or type(exc).__name__})") from None
