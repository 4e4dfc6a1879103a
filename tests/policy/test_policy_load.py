from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.engine.decision import Action
from fiscus.errors import ConfigError
from fiscus.money import to_nanos
from fiscus.policy import DEFAULT_THRESHOLDS, EACH, load_policy, parse_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_finops_example_loads_as_the_full_model() -> None:
    policy = load_policy(EXAMPLES / "finops.yaml")
    (budget,) = policy.budgets
    assert budget.scope == (("agent", "customer-resolver"),)
    assert budget.window.kind == "calendar" and budget.window.unit == "month"
    assert budget.limits.nanos == to_nanos(Decimal(25000))  # utilisation is against the nominal budget
    assert budget.cap.nanos == to_nanos(Decimal(30000))  # the hard stop at 1.2 is the enforced limit
    got = [(t.at, t.action, t.channel, t.fraction, t.override) for t in budget.thresholds]
    assert got == [
        (Decimal("0.5"), Action.NOTIFY, "slack", None, False),
        (Decimal("0.8"), Action.NOTIFY, "pagerduty", None, False),
        (Decimal("1.0"), Action.THROTTLE, None, Decimal("0.5"), False),
        (Decimal("1.2"), Action.BLOCK, None, None, True),
    ]
    assert budget.exhausted is Action.BLOCK and budget.exhausted_override


def test_example_policy_loads_every_window_and_scope_form() -> None:
    policy = load_policy(EXAMPLES / "policy.yaml")
    by_name = {b.name: b for b in policy.budgets}
    assert str(policy.timezone) == "Europe/Berlin"
    assert policy.reserve_for_critical == Decimal("0.1")
    assert by_name["growth-prod"].scope == (("team", "growth"), ("environment", "prod"))
    assert by_name["growth-prod"].thresholds == DEFAULT_THRESHOLDS
    assert by_name["dev-daily"].scope == (("environment", frozenset({"dev", "staging"})),)
    assert by_name["per-user-daily"].scope == (("user", EACH),)
    assert by_name["resolver-5h"].window.kind == "rolling" and by_name["resolver-5h"].window.seconds == 5 * 3600
    assert by_name["session-ceiling"].window.kind == "session"
    assert by_name["tenant-prepaid"].window.kind == "never"
    assert policy.ladders.one_down("claude-opus-4-1-20250805") == "claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("text", "field", "fault"),
    [
        ("budgets:\n  - scope: {team: a}\n    limit: {usd: -1}\n", "budgets.0.limit.usd", "greater than 0"),
        (
            "budgets:\n  - scope: {squad: a}\n    limit: {usd: 1}\n",
            "budgets.0.scope",
            "unknown scope dimension 'squad'",
        ),
        ("budgets:\n  - limit: {usd: 1}\n    window: fortnight\n", "budgets.0.window", ""),
        ("budgets:\n  - limit: {}\n", "budgets.0.limit", "at least one of usd, tokens, requests"),
        (
            "budgets:\n  - limit: {usd: 1}\n    thresholds: [{at: 0.5, action: notify}]\n",
            "budgets.0.thresholds.0",
            "needs a channel",
        ),
        (
            "budgets:\n  - limit: {usd: 1}\n    thresholds: [{at: 0.5, action: warn, override: true}]\n",
            "budgets.0.thresholds.0",
            "override belongs to block",
        ),
        ("budgets:\n  - limit: {usd: 1}\n    window: {rolling: 5 hours}\n", "budgets.0.window", "duration"),
        ("budgets:\n  - limit: {usd: 1}\n    colour: red\n", "budgets.0.colour", "Extra inputs"),
    ],
)
def test_validation_errors_name_file_field_and_fault(tmp_path: Path, text: str, field: str, fault: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert field in message
    assert fault in message
    assert "\n" not in message


def test_unknown_timezone_and_duplicate_names_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timezone: unknown IANA time zone 'Mars/Olympus'"):
        load_policy(write(tmp_path, "timezone: Mars/Olympus\n"))
    dup = "budgets:\n  - {name: a, limit: {usd: 1}}\n  - {name: a, limit: {usd: 2}}\n"
    with pytest.raises(ConfigError, match=r"budgets\.1\.name: duplicate budget name 'a'"):
        load_policy(write(tmp_path, dup))


def test_shorthand_errors_name_the_field(tmp_path: Path) -> None:
    text = "agent: x\nbudget_monthly_usd: 10\nalerts:\n  - {threshold: 0.5, action: page_the_ceo}\n"
    with pytest.raises(ConfigError, match=r"alerts\.0\.action: .*unknown alert action 'page_the_ceo'"):
        load_policy(write(tmp_path, text))


def test_default_thresholds_and_cap_equal_the_nominal_limit() -> None:
    policy = parse_policy({"budgets": [{"scope": {"team": "a"}, "limit": {"usd": 100, "tokens": 1000}}]})
    (budget,) = policy.budgets
    assert [(t.at, t.action) for t in budget.thresholds] == [
        (Decimal("0.8"), Action.WARN),
        (Decimal("0.9"), Action.DOWNGRADE),
        (Decimal("0.9"), Action.COMPRESS),
        (Decimal("1.0"), Action.PARTIAL),
    ]
    assert budget.cap == budget.limits
    assert budget.exhausted is Action.PARTIAL
    assert budget.name == "team=a/month"


def test_static_override_keys_are_refused_with_what_to_do_instead() -> None:
    with pytest.raises(ConfigError, match=r"override_keys_env: .*static override keys were removed: grant an"):
        parse_policy({"override_keys_env": "MY_KEYS"})
