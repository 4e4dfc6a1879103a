"""The shipped examples stay valid: the config and both policies load as written."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from fiscus.config import load_config
from fiscus.policy import load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLES / "fiscus.yaml")
    assert config.gateway.workers == 2 and config.optimise.prompt_cache and config.gateway.pace_check_s == 300
    assert set(config.providers) == {"openai", "anthropic"}


def test_the_example_policies_load() -> None:
    full = load_policy(EXAMPLES / "policy.yaml")
    assert full.routes["triage"] == ("claude-haiku-4-5", "gpt-5-nano") and full.context == {"triage": 8000}
    finops = load_policy(EXAMPLES / "finops.yaml")
    assert [b.name for b in finops.budgets] and finops.budgets[0].limits.nanos == 25_000 * 10**9


def test_the_example_workload_models_the_seeds_figures() -> None:
    from fiscus.pricing import PriceCatalogue
    from fiscus.reports.model import load_spec, model_workload

    result = model_workload(load_spec(EXAMPLES / "workload.yaml", changes={"samples": 40}), PriceCatalogue())
    months = {w.name: w.forecast.period_p50 for w in result.workflows}
    assert months["research"] == 450 and months["compliance-check"] == 450 and months["deep-dive"] == 990
    assert {t.name: t.input_mtok for t in result.task_classes}["triage"] == Decimal("1.8")


def test_the_example_config_configures_every_channel_the_example_policies_notify() -> None:
    from fiscus.notify.channels import check_channels

    config = load_config(EXAMPLES / "fiscus.yaml")
    for name in ("policy.yaml", "finops.yaml"):
        check_channels(load_policy(EXAMPLES / name), config.notify, config=EXAMPLES / "fiscus.yaml")
