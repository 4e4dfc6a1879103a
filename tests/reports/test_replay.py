"""What-if replay: recorded usage re-priced under another model per task class, a policy's routes, caching off or
on, context windows, batch and today's prices, exactly, with the assumptions named; `fiscus replay` end to end
on a real SQLite ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.events.cost_event import CostEvent
from fiscus.ledger import open_ledger
from fiscus.policy.load import parse_policy
from fiscus.pricing import PriceCatalogue, PricingConfig
from fiscus.reports.replay import WhatIf, replay
from fiscus.usage.model import Usage

CATALOGUE = PriceCatalogue()
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def call(
    n: int, model: str, usage: Usage, at: datetime, catalogue: PriceCatalogue = CATALOGUE, **dims: str
) -> CostEvent:
    return CostEvent(
        id=f"e{n}",
        timestamp=at,
        provider="anthropic",
        requested_model=model,
        served_model=model,
        usage=usage,
        cost=catalogue.price(usage, provider="anthropic", model=model, at=at),
        attribution=Attribution(**dims),
    )


def ledger_events(catalogue: PriceCatalogue = CATALOGUE) -> list[CostEvent]:
    """Three research sessions of four Opus calls a minute apart (10k more input each), ten lone triage calls on
    Sonnet, and one support call that read 8k from cache."""
    events = []
    for s in range(3):
        for k in range(1, 5):
            at = START + timedelta(hours=s, minutes=k)
            usage = Usage(input_tokens=10_000 * k, output_tokens=500)
            events.append(
                call(s * 10 + k, "claude-opus-4-6", usage, at, catalogue, task_class="research", session=f"r{s}")
            )
    for i in range(10):
        usage = Usage(input_tokens=2000, output_tokens=100)
        events.append(
            call(
                100 + i,
                "claude-sonnet-4-6",
                usage,
                START + timedelta(hours=5, minutes=i * 10),
                catalogue,
                task_class="triage",
            )
        )
    usage = Usage(input_tokens=2000, cache_read_tokens=8000, output_tokens=100)
    events.append(call(200, "claude-sonnet-4-6", usage, START + timedelta(hours=6), catalogue, task_class="support"))
    return events


def rows(what_if: WhatIf, catalogue: PriceCatalogue = CATALOGUE) -> dict[str | None, object]:
    result = replay(ledger_events(), what_if, catalogue)
    return {r.group["task_class"]: r for r in result.rows} | {"_total": result.total, "_notes": result.assumptions}


def test_no_change_reprices_to_the_recorded_cost() -> None:
    found = rows(WhatIf())
    total = found["_total"]
    assert total.calls == 23 and total.what_if == total.actual and total.saving == 0  # type: ignore[attr-defined]
    assert "each call at the catalogue price in force at its own time" in found["_notes"]  # type: ignore[operator]


def test_another_model_per_task_class_and_a_policys_routes() -> None:
    found = rows(WhatIf(models={"research": "claude-sonnet-4-6"}))
    research = found["research"]
    assert research.what_if == research.actual * Decimal("0.6") and research.moved == 12  # type: ignore[attr-defined]
    assert research.saving_share == Decimal("0.4")  # type: ignore[attr-defined]
    notes = found["_notes"]
    assert "12 call(s) from claude-opus-4-6 to claude-sonnet-4-6: input and output token counts unchanged" in notes  # type: ignore[operator]
    policy = parse_policy({"routes": {"triage": ["claude-haiku-4-5"]}})
    triage = rows(WhatIf(policy=policy))["triage"]
    assert triage.what_if * 3 == triage.actual and triage.moved == 10  # type: ignore[attr-defined]


def test_caching_off_and_on() -> None:
    support = rows(WhatIf(cache="off"))["support"]
    assert support.what_if == Decimal(10_000 * 3 + 100 * 15) / 1_000_000  # type: ignore[attr-defined]
    research = rows(WhatIf(cache="on"))["research"]
    opus = CATALOGUE.sheet(provider="anthropic", model="claude-opus-4-6")
    # per session: write 10k; read 10k + write 10k; read 20k + write 10k; read 30k + 10k plain (no next call)
    read, write, fresh, out = 60_000, 30_000, 10_000, 2000
    parts = read * opus.cache_read.base + write * opus.cache_write_5m.base + fresh * opus.input.base
    session = (parts + out * opus.output.base) / 1_000_000
    assert research.what_if == 3 * session  # type: ignore[attr-defined]
    assert research.saving > 0  # type: ignore[attr-defined]


def test_context_windows_and_batch() -> None:
    found = rows(WhatIf(context={"research": 15_000}, batch=frozenset({"triage"})))
    research, triage = found["research"], found["triage"]
    kept = 10_000 + 15_000 * 3  # per session, after the window
    assert research.what_if == 3 * (Decimal(kept) * 5 + 2000 * 25) / 1_000_000  # type: ignore[attr-defined]
    assert triage.what_if * 2 == triage.actual  # type: ignore[attr-defined]
    notes = " | ".join(found["_notes"])  # type: ignore[arg-type]
    assert "context windows cut 135,000 input tokens" in notes and "batch for triage" in notes


def test_todays_prices_vs_the_prices_at_call_time() -> None:
    raised = PriceCatalogue(
        PricingConfig.model_validate(
            {
                "models": [
                    {
                        "provider": "anthropic",
                        "model": "claude-sonnet-4-6",
                        "valid_from": "2026-11-20",
                        "input_mtok": 6,
                        "output_mtok": 30,
                    }
                ]
            }
        )
    )
    at_call = replay(ledger_events(), WhatIf(), raised).rows
    assert all(r.saving == 0 for r in at_call)
    now = {
        r.group["task_class"]: r
        for r in replay(ledger_events(), WhatIf(prices_at=datetime(2026, 12, 1, tzinfo=UTC)), raised).rows
    }
    assert now["triage"].what_if == 2 * now["triage"].actual and now["research"].saving == 0


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    with open_ledger(url) as ledger:
        ledger.append(ledger_events())
    return url


def test_cli_json_and_table(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    args = ["replay", "--ledger", ledger_url, "--model", "research=claude-sonnet-4-6", "--batch", "triage"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    research = next(r for r in data["rows"] if r["task_class"] == "research")
    assert research["saving_share"] == "0.4" and research["calls_on_another_model"] == 12
    assert data["total"]["calls"] == 23 and any("batch for triage" in a for a in data["assumptions"])
    assert main([*args, "--by", "task_class,session", "--cache", "off"]) == 0
    out = capsys.readouterr().out
    assert "replay: actual vs what-if" in out and "40.0 %" in out and "assumed: caching off" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache", "maybe"], "--cache 'maybe': use recorded, on or off"),
        (["--prices", "then"], "--prices 'then': use call-time or now"),
        (["--at", "2026-01-01"], "--at goes with --prices now"),
        (["--context", "research=lots"], "--context research=lots: expected a positive number of tokens"),
        (["--model", "research"], "--model 'research': expected TASK_CLASS=MODEL"),
        (["--model", "research=claude-nope"], "--model/--policy: unknown model 'claude-nope'"),
        (["--by", "colour"], "--by 'colour': use attribution dimensions"),
        (["--where", "task_class=none"], "no calls recorded for this window and filter"),
    ],
)
def test_cli_errors(capsys: pytest.CaptureFixture[str], ledger_url: str, args: list[str], message: str) -> None:
    assert main(["replay", "--ledger", ledger_url, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
