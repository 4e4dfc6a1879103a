"""Fixtures: the emulator on loopback as the upstream, the gateway served by uvicorn in a thread in front of
it, a virtual key, and a governor: the real one on a policy file (`serve_real`), or the scriptable stand-in
on a real budget store (`serve`, the `gw` fixture)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from fiscus.config import FiscusConfig, GatewayConfig, ProviderConfig
from fiscus.events.cost_event import CostEvent
from fiscus.governor import Governor

sys.path.insert(0, str(Path(__file__).parent))
import fake_governor

from tests.conftest import REDIS_URL, delete_redis_keys
from tests.conftest import _require as require_service

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


@dataclass
class Real:
    url: str
    key: str
    governor: Governor
    ledger_url: str
    keyring: Any

    def openai(self, **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.key, max_retries=0, **kw)

    def anthropic(self, **kw: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=self.key, max_retries=0, **kw)

    def events(self) -> list[CostEvent]:
        """The ledger's events once they stop changing: a whole answer leaves before its call is settled (the
        settle follows on the same task), so a client can be faster than the gateway's last ledger write."""
        from fiscus.ledger import open_ledger

        seen: list[CostEvent] | None = None
        while True:
            assert self.governor.ledger.flush(timeout=10)  # type: ignore[union-attr]
            with open_ledger(self.ledger_url) as ledger:
                events = list(ledger.events())
            if seen is not None and len(events) == len(seen):
                return events
            seen = events
            time.sleep(0.05)


def serve_real(
    tmp: Path,
    emulator_url: str,
    policy: str,
    budget_store: str,
    config_update: dict[str, Any] | None = None,
    **options: Any,
) -> Iterator[Real]:
    """The gateway on a real governor (`Governor.from_config`) enforcing `policy` (YAML text); `config_update`
    replaces sections of the config; `options` go to `create_app` (guards, `on_event`)."""
    from fiscus.gateway import run_gateway_in_thread
    from fiscus.keys import KeyRing, open_key_store

    os.environ.setdefault(UPSTREAM_KEY_ENV, "sk-emulator")
    policy_path = tmp / "policy.yaml"
    policy_path.write_text(policy, encoding="utf-8")
    config = make_config(tmp, emulator_url, budget_store).model_copy(
        update={"policy": policy_path, **(config_update or {})}
    )
    governor = Governor.from_config(config)
    keyring = KeyRing(open_key_store(config.keys))
    secret, _ = keyring.create(agent="support-bot", team="growth", environment="test")
    try:
        with run_gateway_in_thread(config, governor=governor, keyring=keyring, **options) as url:
            yield Real(url, secret, governor, config.ledger, keyring)
    finally:
        governor.close()


@contextmanager
def real_gateway(*args: Any, **kwargs: Any) -> Iterator[Real]:
    """`serve_real` as a `with` block, for a test that needs its own policy or config."""
    served = serve_real(*args, **kwargs)
    real = next(served)
    try:
        yield real
    finally:
        next(served, None)


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


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, emulator_url: str) -> Iterator[Served]:
    """The gateway on each shared budget store a deployment uses: a SQLite file and the real Redis."""
    tmp = tmp_path_factory.mktemp("gateway")
    if request.param == "sqlite":
        yield from serve(tmp, emulator_url, f"sqlite:///{tmp}/budget.db")
        return
    require_service(REDIS_URL, 6379, "Redis")
    prefix = f"fiscus-test-{uuid.uuid4().hex[:12]}"
    try:
        yield from serve(tmp, emulator_url, f"{REDIS_URL}?prefix={prefix}")
    finally:
        delete_redis_keys(REDIS_URL, prefix)


@pytest.fixture(autouse=True)
def _reset_plan(request: pytest.FixtureRequest) -> None:
    if "gw" in request.fixturenames:
        governor = request.getfixturevalue("gw").governor
        if hasattr(governor, "plan"):
            governor.plan = fake_governor.Plan()
