"""The upstream client's TLS and proxies, against the emulator served over HTTPS with a certificate from a
throwaway CA: certificates and host names are verified (a self-signed server is refused unless its CA is
configured), `ca_bundle` adds a private CA, and `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` are honoured, https
through a CONNECT tunnel the proxy cannot read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import trustme

from fiscus.config import ProviderConfig, load_config
from fiscus.emulator import EmulatorConfig, create_app
from fiscus.errors import ConfigError
from fiscus.providers import Upstream, UpstreamConnectError, UpstreamRequest
from fiscus.providers.dial import ProxySettings, parse_proxy
from fiscus.serving import serve_in_thread

from .conftest import KEYS
from .connect_proxy import connect_proxy

NAME = "provider.invalid"  # resolves nowhere: only the test proxy knows where it is
CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "the secret plan"}]})
REQUEST = UpstreamRequest("openai", "chat.completions", "gpt-4o-mini", CHAT)


class Certs:
    def __init__(self, folder: Path) -> None:
        ca = trustme.CA()
        issued = ca.issue_cert("localhost", NAME)  # not for 127.0.0.1: a host-name check has something to refuse
        self.ca = folder / "ca.pem"
        self.cert = folder / "cert.pem"
        self.key = folder / "key.pem"
        ca.cert_pem.write_to_path(str(self.ca))
        issued.cert_chain_pems[0].write_to_path(str(self.cert))
        issued.private_key_pem.write_to_path(str(self.key))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def https_port(certs: Certs) -> Iterator[int]:
    """The emulator over HTTPS on 127.0.0.1, with a certificate for localhost and provider.invalid."""
    app = create_app(EmulatorConfig(api_keys=frozenset(KEYS.values())))
    with serve_in_thread(app, name="tls-emulator", lifespan="off", tls=(str(certs.cert), str(certs.key))) as url:
        yield int(url.rsplit(":", 1)[1])


def _upstream(base_url: str, env: dict[str, str] | None = None, **fields: object) -> Upstream:
    config = ProviderConfig(kind="openai", base_url=base_url, api_key_env="OPENAI_KEY", max_retries=0, **fields)
    return Upstream({"openai": config}, env={**KEYS, **(env or {})})


async def test_a_self_signed_provider_is_refused_unless_its_ca_is_configured(https_port: int, certs: Certs) -> None:
    async with _upstream(f"https://localhost:{https_port}/v1") as up:
        with pytest.raises(UpstreamConnectError, match="certificate of localhost not trusted"):
            await up.send(REQUEST)
    async with _upstream(f"https://localhost:{https_port}/v1", ca_bundle=certs.ca) as up:
        answer = await up.send(REQUEST)
    assert answer.status == 200 and orjson.loads(answer.body)["object"] == "chat.completion"


async def test_the_host_name_is_verified(https_port: int, certs: Certs) -> None:
    # A trusted CA, but a certificate for other names than the one dialled.
    async with _upstream(f"https://127.0.0.1:{https_port}/v1", ca_bundle=certs.ca) as up:
        with pytest.raises(UpstreamConnectError, match="not trusted: IP address mismatch"):
            await up.send(REQUEST)


async def test_https_goes_through_a_connect_tunnel_the_proxy_cannot_read(https_port: int, certs: Certs) -> None:
    with connect_proxy({NAME: "127.0.0.1"}, credentials="corp:p@ss") as (proxy, log):
        env = {"HTTPS_PROXY": f"http://corp:p%40ss@{proxy}", "NO_PROXY": "internal.example,10.0.0.0/8"}
        async with _upstream(f"https://{NAME}:{https_port}/v1", env, ca_bundle=certs.ca) as up:
            first = await up.send(REQUEST)
            second = await up.send(REQUEST)  # the tunnel is a kept-alive connection like any other
    assert first.status == second.status == 200
    assert log.requests == [f"CONNECT {NAME}:{https_port}"]
    assert log.authorizations == ["Basic Y29ycDpwQHNz"]  # corp:p@ss
    seen = bytes(log.client_bytes)
    assert KEYS["OPENAI_KEY"].encode() not in seen and b"the secret plan" not in seen  # TLS end to end


async def test_no_proxy_hosts_are_dialled_directly(https_port: int, certs: Certs) -> None:
    with connect_proxy({NAME: "127.0.0.1"}) as (proxy, log):
        env = {"https_proxy": f"http://{proxy}", "no_proxy": ".invalid"}
        async with _upstream(f"https://{NAME}:{https_port}/v1", env, ca_bundle=certs.ca) as up:
            with pytest.raises(UpstreamConnectError, match=f"cannot connect to {NAME}"):
                await up.send(REQUEST)  # directly: the name resolves nowhere
        async with _upstream(f"https://localhost:{https_port}/v1", env, ca_bundle=certs.ca) as up:
            assert (await up.send(REQUEST)).status == 200  # loopback is never proxied
    assert log.requests == []


async def test_a_proxy_that_refuses_the_tunnel_is_a_clear_connect_error(https_port: int, certs: Certs) -> None:
    with connect_proxy({NAME: "127.0.0.1"}, credentials="corp:right") as (proxy, log):
        env = {"HTTPS_PROXY": f"http://corp:wrong@{proxy}"}
        async with _upstream(f"https://{NAME}:{https_port}/v1", env, ca_bundle=certs.ca) as up:
            with pytest.raises(UpstreamConnectError, match=r"refused the tunnel.*407") as refused:
                await up.send(REQUEST)
    assert "wrong" not in str(refused.value)  # the proxy's password is never in an error
    assert log.requests == [f"CONNECT {NAME}:{https_port}"]


async def test_http_providers_go_through_http_proxy_in_absolute_form(emulator: str) -> None:
    port = int(emulator.rsplit(":", 1)[1])
    with connect_proxy({NAME: "127.0.0.1"}) as (proxy, log):
        async with _upstream(f"http://{NAME}:{port}/v1", {"HTTP_PROXY": f"http://{proxy}"}) as up:
            answer = await up.send(REQUEST)
    assert answer.status == 200
    assert log.requests == [f"POST http://{NAME}:{port}/v1/chat/completions"]


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "proxied"),
    [
        ("", "api.openai.com", 443, True),
        ("openai.com", "api.openai.com", 443, False),
        (".openai.com", "api.openai.com", 443, False),
        ("*.openai.com", "openai.com", 443, False),
        ("i.com", "openai.com", 443, True),  # a suffix must end at a dot
        ("api.openai.com:8443", "api.openai.com", 443, True),
        ("api.openai.com:443", "api.openai.com", 443, False),
        ("10.0.0.0/8", "10.2.3.4", 443, False),
        ("10.0.0.0/8", "11.2.3.4", 443, True),
        ("[2001:db8::1]:443", "2001:db8::1", 443, False),
        ("*", "api.anthropic.com", 443, False),
        ("", "localhost", 443, False),
        ("", "127.0.0.2", 443, False),
        ("", "::1", 443, False),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, proxied: bool) -> None:
    settings = ProxySettings.from_env({"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": no_proxy})
    assert (settings.for_origin("https", host, port) is not None) is proxied


def test_proxy_settings_from_the_environment() -> None:
    settings = ProxySettings.from_env({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2", "HTTP_PROXY": "h"})
    assert settings.https is not None and (settings.https.host, settings.https.port) == ("low", 1)
    assert settings.http is not None and (settings.http.host, settings.http.port) == ("h", 80)
    assert ProxySettings.from_env({}).for_origin("https", "api.openai.com", 443) is None
    assert "secret" not in repr(parse_proxy("http://u:secret@proxy:3128", "HTTPS_PROXY"))
    for bad in ("socks5://proxy:1080", "https://proxy:443", "http://proxy:port", "http://:3128"):
        with pytest.raises(ConfigError, match="HTTPS_PROXY"):
            parse_proxy(bad, "HTTPS_PROXY")


def test_ca_bundle_is_relative_to_the_config_and_checked_at_start(tmp_path: Path, certs: Certs) -> None:
    (tmp_path / "corp-ca.pem").write_bytes(certs.ca.read_bytes())
    (tmp_path / "broken.pem").write_text("not a certificate")
    path = tmp_path / "fiscus.yaml"
    path.write_text(
        "providers:\n"
        "  corp: {kind: openai-compatible, base_url: 'https://llm.corp/v1', ca_bundle: corp-ca.pem}\n"
        "  bad: {kind: openai-compatible, base_url: 'https://other.corp/v1', ca_bundle: broken.pem}\n"
    )
    config = load_config(path)
    assert config.providers["corp"].ca_bundle == tmp_path / "corp-ca.pem"
    with pytest.raises(ConfigError, match=r"providers\.bad\.ca_bundle: cannot load the CA bundle"):
        Upstream(config.providers, env={})
    assert Upstream({"corp": config.providers["corp"]}, env={})
