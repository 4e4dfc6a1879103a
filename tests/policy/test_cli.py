"""`fiscus budgets check` and `fiscus budgets status`: exit codes, one-line errors, tables that survive a pipe."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.governor import CallRequest, Governor
from fiscus.money import from_nanos, to_nanos
from fiscus.policy import load_policy
from fiscus.pricing import ModelOverride, PriceCatalogue, PricingConfig
from fiscus.stores import open_store
from fiscus.usage import Usage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
POLICY = """
timezone: Europe/Berlin
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 1, requests: 100}
    thresholds:
      - {at: 0.5, action: notify, channel: slack}
      - {at: 1.0, action: block, override: true}
  - name: org-monthly
    window: month
    limit: {usd: 50}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def policy_file(folder: Path, text: str = POLICY) -> Path:
    path = folder / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def spend(policy: Path, store_url: str) -> Decimal:
    """Record one call through a governor on the store; its cost."""
    prices = PricingConfig(
        models=[ModelOverride(provider="local", model="m", input_mtok=Decimal(10), output_mtok=Decimal(30))]
    )
    governor = Governor(policy=load_policy(policy), store=open_store(store_url), catalogue=PriceCatalogue(prices))
    request = CallRequest("local", "m", Attribution(team="growth"), input_tokens=50_000, max_tokens=1000)
    event = governor.settle(governor.admit(request), Usage(input_tokens=50_000, output_tokens=1000))
    governor.close()
    return event.cost.total  # $0.50 + $0.03


def config_file(folder: Path, channels: str = "slack: {kind: log}") -> Path:
    path = folder / "fiscus.yaml"
    path.write_text(f"notify:\n  channels: {{{channels}}}\n", encoding="utf-8")
    return path


def test_check_lists_every_budget_and_fits_a_pipe(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy, config = str(policy_file(tmp_path)), str(config_file(tmp_path))
    code, out, err = run(capsys, "budgets", "check", "--policy", policy, "--config", config)
    assert code == 0 and err == ""
    assert "2 budget(s), time zone Europe/Berlin" in " ".join(out.split())  # the title wraps with a long path
    for text in ("growth-daily", "team=growth", "org-monthly", "everything", "0.5 → notify slack", "$1.00, 100"):
        assert text in out
    growth = out[out.index("growth-daily") : out.index("org-monthly")]
    assert "1.0 → block (overridable)" in growth and "│ block (overridable)" in growth
    assert "partial" in out[out.index("org-monthly") :]  # the default thresholds end in partial
    assert max(len(line) for line in out.splitlines()) <= 120  # captured, not a terminal: 120 columns


def test_check_refuses_a_channel_the_config_does_not_configure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = policy_file(tmp_path)
    config = config_file(tmp_path, "finance: {kind: log}")
    code, out, err = run(capsys, "budgets", "check", "--policy", str(policy), "--config", str(config))
    assert code == 2 and out == ""
    assert err == (
        f"fiscus: error: {policy}: budget 'growth-daily' notifies channel 'slack', which {config} does not configure "
        "(notify.channels: finance)\n"
    )
    code, _, err = run(capsys, "budgets", "check", "--policy", str(policy))
    assert code == 2 and "which the built-in config (pass --config fiscus.yaml) does not configure" in err


def test_serve_refuses_to_start_with_an_unknown_channel(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = policy_file(tmp_path)
    config = tmp_path / "serve.yaml"
    config.write_text(f"policy: {policy}\nnotify:\n  channels: {{ops: {{kind: log}}}}\n", encoding="utf-8")
    code, _, err = run(capsys, "serve", "--config", str(config))
    assert code == 2 and err.count("\n") == 1
    assert "budget 'growth-daily' notifies channel 'slack', which" in err and "(notify.channels: ops)" in err


def test_check_accepts_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(EXAMPLE.parent / "fiscus.yaml")
    code, out, _ = run(capsys, "budgets", "check", "--policy", str(EXAMPLE), "--config", config)
    assert code == 0 and "session-ceiling" in out
    assert "route: task class triage runs on claude-haiku-4-5, gpt-5-nano" in out
    assert "context window: task class triage sends at most 8,000 input tokens" in out


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("budgets:\n  - name: x\n    limit: {usd: -1}\n", "budgets.0"),
        ("budgets:\n  - name: x\n    limit: {usd: 1}\n    thresholds: [{at: 0.5, action: explode}]\n", "thresholds"),
        ("budgets: [\n", "not valid YAML"),
    ],
)
def test_check_refuses_a_bad_policy_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, fault: str
) -> None:
    path = policy_file(tmp_path, text)
    code, out, err = run(capsys, "budgets", "check", "--policy", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"fiscus: error: {path}") and fault in err
    assert err.count("\n") == 1


def test_check_missing_file_and_missing_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "budgets", "check", "--policy", str(tmp_path / "absent.yaml"))
    assert code == 2 and err == f"fiscus: error: {tmp_path / 'absent.yaml'}: no such file\n"
    code, _, err = run(capsys, "budgets", "check")
    assert code == 2 and "--policy" in err and err.count("\n") == 1


def test_status_shows_spend_from_the_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy, store = policy_file(tmp_path), f"sqlite:///{tmp_path / 'budgets.db'}"
    cost = spend(policy, store)
    code, out, err = run(capsys, "budgets", "status", "--store", store, "--policy", str(policy))
    assert code == 0 and err == ""
    growth = next(line for line in out.splitlines() if "growth-daily" in line)
    assert "$0.53" in growth and "53.0% (usd)" in growth and "0.5 → notify" in growth

    code, out, _ = run(capsys, "budgets", "status", "--store", store, "--policy", str(policy), "--json")
    rows = {row["budget"]: row for row in json.loads(out)["budgets"]}
    assert code == 0 and set(rows) == {"growth-daily", "org-monthly"}
    assert Decimal(rows["growth-daily"]["spent"]["usd"]) == from_nanos(to_nanos(cost))
    assert rows["growth-daily"]["spent"]["requests"] == 1 and rows["growth-daily"]["reserved"]["usd"] == "0"
    assert rows["growth-daily"]["state"] == "ok" and rows["org-monthly"]["threshold"] is None


def test_status_keeps_every_row_whole_when_piped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    user = "customer-support-escalations-" + "x" * 60 + "@example.com"
    policy = policy_file(
        tmp_path,
        "budgets:\n  - name: per-user-daily-with-a-long-name\n    scope: {user: '*'}\n    window: day\n"
        "    limit: {usd: 1, tokens: 900000000, requests: 100000}\n"
        "    thresholds: [{at: 0.5, action: throttle, per_minute: 30}, {at: 1.0, action: block, override: true}]\n",
    )
    store = f"sqlite:///{tmp_path / 'budgets.db'}"
    prices = PricingConfig(models=[ModelOverride(provider="local", model="m", input_mtok=Decimal(10), output_mtok=0)])
    governor = Governor(policy=load_policy(policy), store=open_store(store), catalogue=PriceCatalogue(prices))
    request = CallRequest("local", "m", Attribution(user=user), input_tokens=60_000, max_tokens=10)
    governor.settle(governor.admit(request), Usage(input_tokens=60_000))
    governor.close()
    code, out, _ = run(capsys, "budgets", "status", "--store", store, "--policy", str(policy))
    assert code == 0
    (row,) = [line for line in out.splitlines() if user in line and line.startswith("│")]  # one table row, whole
    for cell in (
        "per-user-daily-with-a-long-name",
        f"user={user}",
        "$0.60",
        "60,000 tok",
        "60.0% (usd)",
        "0.5 → throttle",
    ):
        assert cell in row
    assert len(row) > 200 and "…" not in out


def test_status_reads_store_and_policy_from_the_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy_file(tmp_path)
    store = f"sqlite:///{tmp_path / 'budgets.db'}"
    spend(tmp_path / "policy.yaml", store)
    config = tmp_path / "fiscus.yaml"
    config.write_text(f"budget_store: {store}\npolicy: policy.yaml\n", encoding="utf-8")
    code, out, _ = run(capsys, "budgets", "status", "--config", str(config), "--json")
    assert code == 0 and [row["spent"]["requests"] for row in json.loads(out)["budgets"]] == [1, 1]


def test_status_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "fiscus.yaml"
    empty.write_text("budget_store: memory://\n", encoding="utf-8")
    code, out, err = run(capsys, "budgets", "status", "--config", str(empty))
    assert (code, out) == (
        2,
        "",
    ) and err == "fiscus: error: no policy: pass --policy FILE or set `policy:` in fiscus.yaml\n"
    policy = str(policy_file(tmp_path))
    code, _, err = run(capsys, "budgets", "status", "--policy", policy, "--store", "etcd://x")
    assert code == 2 and err.startswith("fiscus: error: budget store URL 'etcd://x'") and err.count("\n") == 1
    code, _, err = run(capsys, "budgets", "status", "--config", str(tmp_path / "none.yaml"))
    assert code == 2 and err.count("\n") == 1 and "none.yaml: no such file" in err


@pytest.mark.parametrize("name", ["model_error_rate", "breakers"])
def test_check_and_serve_refuse_a_guard_that_cannot_be_overridable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    policy = policy_file(tmp_path)
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        f"policy: {policy}\nnotify:\n  channels: {{slack: {{kind: log}}}}\nguards:\n  overridable: [loop, {name}]\n",
        encoding="utf-8",
    )
    why = "never overridable" if name == "model_error_rate" else f"unknown overridable refusal '{name}'"
    for args in (
        ("budgets", "check", "--policy", str(policy), "--config", str(config)),
        ("serve", "--config", str(config)),
    ):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith(f"fiscus: error: {config}: guards.overridable: ") and why in err
