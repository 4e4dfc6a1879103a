"""The gateway runs the pace watch: a budget on pace to pass its limit before the reset is announced to the
governor's listeners, with no request asking for it."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from fiscus.attribution import Attribution
from fiscus.config import GatewayConfig
from fiscus.events.budget_events import BudgetOffPace
from fiscus.gateway import run_gateway_in_thread
from fiscus.governor import CallRequest, Governor
from fiscus.keys import KeyRing, open_key_store
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store
from fiscus.usage.model import Usage
from tests.gateway.conftest import UPSTREAM_KEY_ENV, make_config

SIX_AM = datetime(2026, 6, 9, 6, tzinfo=UTC).timestamp()  # a quarter of the day gone


def test_the_gateway_announces_a_budget_off_pace(tmp_path: Path, emulator_url: str) -> None:
    os.environ.setdefault(UPSTREAM_KEY_ENV, "sk-emulator")
    budgets = [{"name": "growth-day", "scope": {"team": "growth"}, "window": "day", "limit": {"requests": 2}}]
    store = f"sqlite:///{tmp_path}/budget.db"
    governor = Governor(
        policy=parse_policy({"budgets": budgets}),
        store=open_store(store),
        catalogue=PriceCatalogue(),
        clock=lambda: SIX_AM,
    )
    request = CallRequest("openai", "gpt-4o-mini", Attribution(team="growth"), input_tokens=10, max_tokens=10)
    governor.settle(governor.admit(request), Usage(input_tokens=10, output_tokens=10))  # 1 of 2: 200 % by midnight
    seen: list[object] = []
    governor.add_listener(seen.append)
    config = make_config(tmp_path, emulator_url, store).model_copy(update={"gateway": GatewayConfig(pace_check_s=0.05)})
    keyring = KeyRing(open_key_store(config.keys))
    with run_gateway_in_thread(config, governor=governor, keyring=keyring):
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # more checks run meanwhile: still one announcement
    (event,) = seen
    assert isinstance(event, BudgetOffPace) and event.budget == "growth-day" and event.projected == 2
    assert event.exhausts_at == datetime(2026, 6, 9, 12, tzinfo=UTC)
    governor.close()
