"""Task pre-flight without reserving: `Governor.preflight` decides as `admit` would for a task of N calls but
holds nothing and announces nothing; `fiscus budgets preflight` says whether it fits, on what cap, and when it
may (or that it never can), with exit code 0 / 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.governor import CallRequest
from fiscus.usage.model import Usage
from tests.governor._support import governor

BUDGET = {"name": "team-day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}}


def task(calls: int) -> CallRequest:  # big: $10 / $30 per million tokens; $0.13 worst case per call
    return CallRequest("local", "big", Attribution(team="growth"), input_tokens=10_000, max_tokens=1000, calls=calls)


def test_preflight_decides_without_holding_or_announcing_anything() -> None:
    gov, _, ledger, events = governor({"budgets": [BUDGET]})
    decision = gov.preflight(task(5))
    assert decision.calls_model and decision.reserve is not None and decision.reserve.nanos == 650_000_000
    assert [r.budget for r in decision.reasons] == ["team-day"]  # every applicable budget, calm ones too
    (status,) = gov.status()
    assert status.reserved.nanos == status.spent.nanos == 0 and ledger.events == [] and events == []


def test_a_task_that_must_wait_and_one_that_never_fits() -> None:
    gov, _, _, _ = governor({"budgets": [{**BUDGET, "thresholds": [{"at": 1.0, "action": "block"}]}]})
    admission = gov.admit(task(1))
    gov.settle(admission, Usage(input_tokens=10_000, output_tokens=21_667))  # $0.75 of $1 spent
    assert gov.preflight(task(4)).model == "small"  # $0.52 on big does not fit what is left; on small it does
    waits = gov.preflight(task(30))  # its input alone is $0.30 on small: more than the $0.25 left
    assert not waits.calls_model and waits.retry_at is not None and "a task of 30 calls" in waits.message
    assert gov.preflight(task(30), fresh=True).calls_model
    assert not gov.preflight(task(100), fresh=True).calls_model  # $1 of input alone on small: the whole limit


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "budgets:\n  - {name: research-day, scope: {agent: researcher}, window: day, limit: {usd: 5},"
        " thresholds: [{at: 1.0, action: block}]}\n",
        encoding="utf-8",
    )
    store = f"sqlite:///{tmp_path}/budget.db"
    base = ["budgets", "preflight", "--policy", str(policy), "--store", store, "--provider", "anthropic"]
    base += ["--model", "claude-sonnet-4-6", "--agent", "researcher", "--max-tokens", "2000"]
    code, out, _ = run(capsys, *base, "--calls", "4", "--input-tokens", "20000")
    # 20,000 counted + the 20 % margin at $3/M and 2,000 output at $15/M, four times: $0.408
    assert code == 0 and "A task of 4 calls on anthropic/claude-sonnet-4-6 fits (allow); reserves $0.408" in out
    assert "24000 tokens reserved (20000 counted + 20 %), at most 24000" in out
    code, out, _ = run(capsys, *base, "--calls", "4", "--input-tokens", "20000", "--input-bytes", "80000", "--json")
    answer = json.loads(out)  # the hard bound: 80,000 tokens at $3/M → 4 × $0.27 = $1.08 at most
    assert answer["reserve_usd"] == "0.408" and answer["worst_case_usd"] == "1.08"
    assert (answer["input_estimate_tokens"], answer["input_bound_tokens"]) == (24_000, 80_000)
    # a 1 h cache breakpoint after 10,000 tokens: 12,000 of the estimate at the 1 h write price ($6/M)
    code, out, _ = run(capsys, *base, "--input-tokens", "20000", "--cache-write-tokens", "10000", "--cache-ttl", "1h")
    assert code == 0 and "reserves $0.138" in out  # 12k × $6 + 12k × $3 + 2,000 × $15, per million
    code, out, _ = run(capsys, *base, "--calls", "50", "--input-tokens", "20000")
    assert code == 0 and "not the 2000 asked" in out  # it fits only with a smaller output cap
    code, out, _ = run(capsys, *base, "--calls", "40", "--input-tokens", "200000")
    assert code == 1 and "cannot fit even in a fresh window" in out
    code, out, _ = run(capsys, *base, "--calls", "40", "--input-tokens", "200000", "--json")
    answer = json.loads(out)
    assert code == 1 and answer["fits"] is False and answer["action"] == "block"
    assert answer["fits_a_fresh_window"] is False and answer["retry_at"] is None
    assert answer["budgets"][0]["budget"] == "research-day"
    code, out, _ = run(capsys, "budgets", "status", "--policy", str(policy), "--store", store, "--json")
    (row,) = json.loads(out)["budgets"]
    assert code == 0 and row["reserved"]["requests"] == row["spent"]["requests"] == 0  # nothing was held
    code, _, err = run(capsys, *base, "--priority", "urgent")
    assert code == 2 and err == "fiscus: error: --priority 'urgent': use critical, normal, background\n"
