"""Breakeven: the API against a plan and self-hosting, exactly — monthly costs, the volume where each crosses
the API, whether it stays cheaper at scale, the third-party caveat — and `fiscus breakeven` end to end."""

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
from fiscus.pricing.cost import Cost
from fiscus.reports.breakeven import PLAN_CAVEAT, Plan, SelfHost, Volume, breakeven, volume_from_events
from fiscus.usage.model import Usage

VOLUME = Volume(input_tokens=100_000_000, output_tokens=10_000_000, api_usd=Decimal(450), source="test")
HOST = SelfHost(
    gpu_hour_usd=Decimal(2),
    output_tokens_per_second=Decimal(100),
    input_tokens_per_second=Decimal(1000),
    utilisation=Decimal("0.5"),
)


def options(**kwargs: object) -> dict[str, object]:
    result = breakeven(VOLUME, **kwargs)  # type: ignore[arg-type]
    return {o.name: o for o in result.options} | {"_caveats": result.caveats}


def test_a_flat_plan_crosses_where_the_api_costs_its_price_and_carries_the_caveat() -> None:
    found = options(plan=Plan(price_usd=Decimal(200), name="max"))
    plan = found["max"]
    assert plan.monthly_usd == 200 and plan.cheaper_from == Decimal(200) / 450  # type: ignore[attr-defined]
    assert plan.applies is False  # type: ignore[attr-defined]
    assert PLAN_CAVEAT in found["_caveats"] and "third-party tools" in PLAN_CAVEAT  # type: ignore[operator]
    assert any("no quota given" in c for c in found["_caveats"])  # type: ignore[union-attr]
    covered = options(plan=Plan(price_usd=Decimal(200), name="max", covers_third_party=True))["max"]
    assert covered.applies is True  # type: ignore[attr-defined]


def test_a_plan_with_a_quota_takes_seats() -> None:
    plan = options(plan=Plan(price_usd=Decimal(200), tokens_per_seat=50_000_000))["plan"]
    assert plan.monthly_usd == 600  # type: ignore[attr-defined]  # 110M tokens: three seats
    assert plan.cheaper_from == Decimal(200) / 450 and plan.at_scale  # type: ignore[attr-defined]  # $200 for 50M < $204.5
    dear = options(plan=Plan(price_usd=Decimal(250), tokens_per_seat=50_000_000))["plan"]
    assert dear.cheaper_from is None and not dear.at_scale  # type: ignore[attr-defined]  # a seat is dearer than its tokens


def test_self_hosting() -> None:
    host = options(self_host=HOST)["self-hosted"]
    # 100M / 1000 + 10M / 100 GPU-seconds = 55.5 h busy, 111.1 h at 50 %: one GPU of 720 h
    assert host.monthly_usd == Decimal(1440)  # type: ignore[attr-defined]
    assert host.cheaper_from == Decimal("3.2") and host.at_scale  # type: ignore[attr-defined]  # 1440 / 450
    assert "$5.5556/MTok" in host.detail  # type: ignore[attr-defined]  # $2/h for 360k tokens, fully busy
    dear = options(self_host=SelfHost(gpu_hour_usd=Decimal(100), output_tokens_per_second=Decimal(100)))
    assert dear["self-hosted"].cheaper_from is None  # type: ignore[attr-defined]
    ops = SelfHost(HOST.gpu_hour_usd, HOST.output_tokens_per_second, HOST.input_tokens_per_second, ops_usd=Decimal(360))
    with_ops = options(self_host=ops)["self-hosted"]
    assert with_ops.monthly_usd == 1800 and with_ops.cheaper_from == 4  # type: ignore[attr-defined]


def test_the_ledger_window_is_scaled_to_the_month() -> None:
    since = datetime(2026, 11, 1, tzinfo=UTC)
    events = [
        CostEvent(
            provider="anthropic",
            requested_model="claude-sonnet-4-6",
            served_model="claude-sonnet-4-6",
            usage=Usage(input_tokens=1000, cache_read_tokens=500, output_tokens=100),
            cost=Cost(input=Decimal("0.01")),
            timestamp=since + timedelta(days=i),
        )
        for i in range(10)
    ]
    volume = volume_from_events(events, since=since, until=since + timedelta(days=10))
    assert (volume.input_tokens, volume.output_tokens, volume.api_usd) == (45_000, 3000, Decimal("0.3"))


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    now = datetime.now(UTC)
    events = [
        CostEvent(
            id=f"b{i}",
            provider="anthropic",
            requested_model="claude-sonnet-4-6",
            served_model="claude-sonnet-4-6",
            usage=Usage(input_tokens=1_000_000, output_tokens=100_000),
            cost=Cost(input=Decimal(3), output=Decimal("1.5")),
            attribution=Attribution(agent="coder"),
            timestamp=now - timedelta(days=1, minutes=i),
        )
        for i in range(100)
    ]
    with open_ledger(url) as ledger:
        ledger.append(events)
    return url


def test_cli(capsys: pytest.CaptureFixture[str], ledger_url: str, tmp_path: Path) -> None:
    args = ["breakeven", "--ledger", ledger_url, "--since", "30d", "--plan-price", "200", "--plan-name", "max"]
    assert main([*args, "--gpu-hour", "2", "--tokens-per-second", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["volume"]["api_usd"] == "450" and data["volume"]["input_tokens"] == 100_000_000
    by_name = {o["option"]: o for o in data["options"]}
    assert by_name["max"]["applies"] is False and by_name["max"]["monthly_usd"] == "200"
    assert by_name["max"]["cheaper_than_api_from"]["tokens"] == 48_888_888  # 110M × 200/450
    assert data["caveats"][0].startswith("subscription quotas may not cover third-party tools")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "max (not for these agents)" in out and "caveat: subscription quotas" in out
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "prices_at: 2026-12-01\nsamples: 20\nagents: {a: {model: claude-sonnet-4-6, user_input: 50000}}\n"
        "workflows: {w: {agent: a, runs_per_day: 100}}\n",
        encoding="utf-8",
    )
    assert main(["breakeven", "--spec", str(spec), "--plan-price", "200", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["volume"]["api_usd"] == "450" and data["volume"]["input_tokens"] == 150_000_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu-hour", "2"], "self-hosting needs both --gpu-hour and --tokens-per-second"),
        (["--plan-tokens", "5M"], "go with --plan-price"),
        (["--plan-price", "20", "--plan-tokens", "lots"], "--plan-tokens 'lots': expected a token count"),
        (["--since", "1m"], "no priced traffic in the volume"),
        (["--since", "yesterday"], "--since 'yesterday': expected a span"),
    ],
)
def test_cli_errors(capsys: pytest.CaptureFixture[str], ledger_url: str, args: list[str], message: str) -> None:
    assert main(["breakeven", "--ledger", ledger_url, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
