"""`Governor.from_config`: the store, the ledger writer, the policy file and the prices a fiscus.yaml names."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.config import FiscusConfig, load_config
from fiscus.engine import Action
from fiscus.errors import ConfigError, FiscusError
from fiscus.governor import CallRequest, Governor
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos
from fiscus.usage import Usage

POLICY = """
budgets:
  - name: team
    scope: {team: growth}
    window: day
    limit: {usd: 2}
    thresholds:
      - {at: 0.5, action: warn}
      - {at: 1.0, action: block}
"""
CALL = CallRequest("local", "house-model", Attribution(team="growth"), input_tokens=10_000, max_tokens=1000)
USAGE = Usage(input_tokens=10_000, output_tokens=500)  # $0.10 + $0.025 at the configured prices


def write_config(folder: Path, *, policy: str | None = POLICY) -> Path:
    lines = [
        "ledger: sqlite:///" + str(folder / "ledger.db"),
        "budget_store: sqlite:///" + str(folder / "budgets.db"),
        "pricing:",
        "  models:",
        "    - {provider: local, model: house-model, input_mtok: 10, output_mtok: 50}",
    ]
    if policy is not None:
        (folder / "policy.yaml").write_text(policy, encoding="utf-8")
        lines.append("policy: policy.yaml")  # relative to the config file
    path = folder / "fiscus.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_from_config_opens_store_ledger_policy_and_prices(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    governor = Governor.from_config(config)
    try:
        assert [b.name for b in governor.policy.budgets] == ["team"]
        admission = governor.admit(CALL)
        assert admission.decision.action is Action.ALLOW and admission.reservation is not None
        event = governor.settle(admission, USAGE)
        assert event.cost.total == Decimal("0.125")
    finally:
        governor.close()  # flushes the ledger writer, closes the store

    ledger = open_ledger(config.ledger)
    stored = ledger.get(event.id)
    assert stored is not None and stored.cost.total == Decimal("0.125") and stored.attribution.team == "growth"
    ledger.close()

    again = Governor.from_config(config)  # a second process: the spend is in the shared SQLite store
    try:
        (status,) = again.status()
        assert status.spent.nanos == to_nanos(event.cost.total) and status.spent.requests == 1
    finally:
        again.close()


def test_from_config_without_a_policy_governs_nothing_but_records_everything(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, policy=None))
    governor = Governor.from_config(config)
    try:
        assert governor.policy.budgets == ()
        admission = governor.admit(CALL)
        assert admission.decision.action is Action.ALLOW and governor.status() == []
        governor.settle(admission, USAGE)
    finally:
        governor.close()
    ledger = open_ledger(config.ledger)
    assert [e.cost.total for e in ledger.events()] == [Decimal("0.125")]
    ledger.close()


def test_from_config_errors_are_one_line_fiscus_errors(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    missing = config.model_copy(update={"policy": tmp_path / "nowhere.yaml"})
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such file"):
        Governor.from_config(missing)
    (tmp_path / "bad.yaml").write_text("budgets:\n  - name: x\n    limit: {usd: -1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: budgets\.0"):
        Governor.from_config(config.model_copy(update={"policy": tmp_path / "bad.yaml"}))
    with pytest.raises(FiscusError, match="unknown scheme") as caught:
        Governor.from_config(FiscusConfig(budget_store="etcd://somewhere", ledger=config.ledger))
    assert "\n" not in str(caught.value)
