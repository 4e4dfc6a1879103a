"""Fixtures: the emulator on loopback as the upstream, the gateway served by uvicorn in a thread in front of
it, a virtual key, and a governor on a real budget store (SQLite; Redis where marked)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fiscus.config import FiscusConfig, GatewayConfig, ProviderConfig

sys.path.insert(0, str(Path(__file__).parent))
import fake_governor

UPSTREAM_KEY_ENV = "FISCUS_GATEWAY_TEST_UPSTREAM_KEY"


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    from fiscus.emulator import EmulatorConfig, run_in_thread

    with run_in_thread(EmulatorConfig()) as url:
        yield url


def make_config(tmp: Path, emulator_url: str, budget_store: str, max_body_bytes: int = 8 << 20) -> FiscusConfig:
    return FiscusConfig(
        gateway=GatewayConfig(max_body_bytes=max_body_bytes),
        ledger=f"sqlite:///{tmp}/ledger.db",
        budget_store=budget_store,
        keys=f"sqlite:///{tmp}/keys.db",
        providers={
            "openai": ProviderConfig(
                kind="openai",
                base_url=f"{emulator_url}/v1",
                api_key_env=UPSTREAM_KEY_ENV,
                models=["gpt-4o", "gpt-4o-mini", "gpt-4.1*"],
                max_retries=0,
            ),
            "anthropic": ProviderConfig(
                kind="anthropic",
                base_url=f"{emulator_url}/v1",
                api_key_env=UPSTREAM_KEY_ENV,
                models=["claude-*"],
                max_retries=0,
            ),
        },
    )


class Served:
    def __init__(self, url: str, governor: object, keyring: object, key: str, config: FiscusConfig) -> None:
        self.url = url
        self.governor = governor
        self.keyring = keyring
        self.key = key
        self.config = config


def serve(
    tmp: Path, emulator_url: str, budget_store: str, max_body_bytes: int = 8 << 20, **store_options: object
) -> Iterator[Served]:
    import os

    from fiscus.gateway import run_gateway_in_thread
    from fiscus.keys import KeyRing, open_key_store
    from fiscus.stores import open_store

    os.environ.setdefault(UPSTREAM_KEY_ENV, "sk-emulator")
    config = make_config(tmp, emulator_url, budget_store, max_body_bytes)
    # A scriptable governor on a real store: each test picks the decision it needs.
    governor = fake_governor.Governor(store=open_store(budget_store, **store_options))
    keyring = KeyRing(open_key_store(config.keys))
    secret, _ = keyring.create(agent="support-bot", team="growth", environment="test")
    with run_gateway_in_thread(config, governor=governor, keyring=keyring) as url:
        yield Served(url, governor, keyring, secret, config)
    governor.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, emulator_url: str) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("gateway")
    yield from serve(tmp, emulator_url, f"sqlite:///{tmp}/budget.db")


@pytest.fixture(autouse=True)
def _reset_plan(request: pytest.FixtureRequest) -> None:
    if "gw" in request.fixturenames:
        governor = request.getfixturevalue("gw").governor
        if hasattr(governor, "plan"):
            governor.plan = fake_governor.Plan()
