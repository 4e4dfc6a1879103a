"""Breakeven: the API against a subscription plan and against self-hosting, for a month's volume (measured from the
ledger or modelled from a spec) — each option's monthly cost and the volume at which it becomes cheaper than the
API, with the caveat that a plan's quota may not cover third-party tools at all.

Costs as a function of volume: the API is linear (the measured blended price per token); a plan is a step
(`price` per seat, a seat covering `tokens_per_seat` a month); self-hosting is a step too (GPUs always on at
`gpu_hour_usd`, each doing `tokens/s` at the stated utilisation) plus fixed operations. Volumes scale the measured
mix of input and output. Exact decimals throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from fiscus.errors import FiscusError
from fiscus.events.cost_event import CostEvent
from fiscus.pricing import GpuHourPrice
from fiscus.reports.spend import dec

_HOURS_PER_DAY = Decimal(24)
_SECONDS_PER_HOUR = Decimal(3600)
_MAX_STEPS = 100_000  # seats or GPUs scanned for a crossing; beyond that the option is never cheaper in practice
PLAN_CAVEAT = (
    "subscription quotas may not cover third-party tools: since 4 April 2026 Anthropic's Pro ($20) and Max ($200) "
    "plans cover only its own tools (Claude Code, claude.ai, Desktop); agents calling the API pay per token"
)


class BreakevenError(FiscusError):
    """The inputs do not make a comparison (no volume, a rate of zero)."""


@dataclass(frozen=True, slots=True)
class Volume:
    """A month of traffic: tokens in (cache reads and writes included) and out, and what the API charged for it."""

    input_tokens: int
    output_tokens: int
    api_usd: Decimal
    source: str
    days: int = 30

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Plan:
    price_usd: Decimal  # per seat per month
    seats: int = 1  # at least this many
    tokens_per_seat: int | None = None  # the monthly quota of one seat; None: no stated quota
    covers_third_party: bool = False
    name: str = "plan"


@dataclass(frozen=True, slots=True)
class SelfHost:
    gpu_hour_usd: Decimal
    output_tokens_per_second: Decimal
    input_tokens_per_second: Decimal | None = None  # prefill; None: the output rate (a conservative bound)
    utilisation: Decimal = Decimal("0.5")
    min_gpus: int = 1
    ops_usd: Decimal = Decimal(0)  # fixed monthly operations (people, storage, monitoring)


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    monthly_usd: Decimal
    detail: str
    cheaper_from: Decimal | None = None  # × the measured volume where it first costs no more than the API
    at_scale: bool = False  # one more seat / GPU costs less than the API for the volume it carries
    applies: bool = True  # False: the plan does not cover this traffic (third-party tools)

    def to_dict(self, volume: Volume) -> dict[str, Any]:
        tokens = None if self.cheaper_from is None else int(self.cheaper_from * volume.tokens)
        return {
            "option": self.name,
            "monthly_usd": dec(self.monthly_usd),
            "detail": self.detail,
            "applies": self.applies,
            "cheaper_than_api_from": None
            if self.cheaper_from is None
            else {"times_measured_volume": dec(self.cheaper_from.quantize(Decimal("0.0001"))), "tokens": tokens},
            "cheaper_at_scale": self.at_scale,
        }


@dataclass(frozen=True, slots=True)
class Breakeven:
    volume: Volume
    options: list[Option]
    caveats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        v = self.volume
        return {
            "volume": {
                "source": v.source,
                "days": v.days,
                "input_tokens": v.input_tokens,
                "output_tokens": v.output_tokens,
                "api_usd": dec(v.api_usd),
            },
            "options": [o.to_dict(v) for o in self.options],
            "caveats": self.caveats,
        }


def volume_from_events(events: Iterable[CostEvent], *, since: datetime, until: datetime, days: int = 30) -> Volume:
    """The ledger's traffic between `since` and `until`, scaled to `days`."""
    tokens_in = tokens_out = 0
    cost = Decimal(0)
    for event in events:
        tokens_in += event.usage.total_input_tokens
        tokens_out += event.usage.output_tokens
        cost += event.cost.total
    span = Decimal((until - since).total_seconds()) / Decimal(86_400)
    if span <= 0:
        raise BreakevenError("the window is empty")
    scale = Decimal(days) / span
    return Volume(
        int((tokens_in * scale).to_integral_value()),
        int((tokens_out * scale).to_integral_value()),
        cost * scale,
        f"ledger {since.date().isoformat()}..{until.date().isoformat()} scaled to {days} days",
        days,
    )


def breakeven(volume: Volume, *, plan: Plan | None = None, self_host: SelfHost | None = None) -> Breakeven:
    if volume.tokens <= 0 or volume.api_usd <= 0:
        raise BreakevenError("no priced traffic in the volume: nothing to compare the API with")
    api = volume.api_usd
    options = [Option("api", api, f"${_per_mtok(api, volume.tokens)}/MTok blended, as measured")]
    caveats = []
    if plan is not None:
        options.append(_plan(volume, plan))
        caveats.append(PLAN_CAVEAT)
        if plan.covers_third_party:
            caveats.append(f"{plan.name}: counted as covering this traffic, as stated (--plan-covers-third-party)")
        if plan.tokens_per_seat is None:
            caveats.append(f"{plan.name}: no quota given; assumed to cover any volume (plans have usage limits)")
    if self_host is not None:
        options.append(_self_host(volume, self_host))
        caveats.append(
            "self-hosting: an open-weights model must do the job as well as the API model; throughput is per GPU at "
            "the stated utilisation"
        )
    return Breakeven(volume, options, caveats)


def _plan(volume: Volume, plan: Plan) -> Option:
    if plan.tokens_per_seat is None:
        cost = plan.price_usd * plan.seats
        crossing = cost / volume.api_usd
        detail = f"{plan.seats} seat(s) x ${dec(plan.price_usd)}, no quota stated"
        return Option(plan.name, cost, detail, crossing, True, plan.covers_third_party)
    per_volume = Decimal(volume.tokens) / plan.tokens_per_seat  # seats one measured volume fills
    seats = max(plan.seats, _ceil(per_volume))
    cost = plan.price_usd * seats
    detail = f"{seats} seat(s) x ${dec(plan.price_usd)}, {plan.tokens_per_seat:,} tokens a seat"
    crossing, stays = _crossing(volume.api_usd, plan.price_usd, Decimal(0), per_volume, plan.seats)
    return Option(plan.name, cost, detail, crossing, stays, plan.covers_third_party)


def _self_host(volume: Volume, host: SelfHost) -> Option:
    if not 0 < host.utilisation <= 1:
        raise BreakevenError("utilisation must be above 0 and at most 1")
    input_rate = host.input_tokens_per_second or host.output_tokens_per_second
    busy_hours = (
        Decimal(volume.input_tokens) / input_rate + Decimal(volume.output_tokens) / host.output_tokens_per_second
    ) / _SECONDS_PER_HOUR
    gpu_month = _HOURS_PER_DAY * volume.days
    per_volume = busy_hours / host.utilisation / gpu_month  # GPUs one measured volume keeps busy
    gpus = max(host.min_gpus, _ceil(per_volume))
    gpu_cost = host.gpu_hour_usd * gpu_month
    cost = gpu_cost * gpus + host.ops_usd
    rate = GpuHourPrice(usd_per_hour=host.gpu_hour_usd, output_tokens_per_second=host.output_tokens_per_second)
    full = rate.per_mtok(host.output_tokens_per_second).quantize(Decimal("0.0001"))
    detail = (
        f"{gpus} GPU(s) x ${dec(host.gpu_hour_usd)}/h x {dec(gpu_month)} h"
        + (f" + ${dec(host.ops_usd)} ops" if host.ops_usd else "")
        + f"; output ${dec(full)}/MTok at 100 % busy, {dec(host.utilisation * 100)} % assumed"
    )
    crossing, stays = _crossing(volume.api_usd, gpu_cost, host.ops_usd, per_volume, host.min_gpus)
    return Option("self-hosted", cost, detail, crossing, stays)


def _crossing(
    api: Decimal, unit_cost: Decimal, fixed: Decimal, units_per_volume: Decimal, min_units: int
) -> tuple[Decimal | None, bool]:
    """The smallest multiple m of the measured volume where `fixed + unit_cost × max(min_units, ceil(m ×
    units_per_volume))` is no more than `api × m`; and whether it is cheaper at scale (one more unit costs less
    than the API charges for the volume it carries)."""
    if units_per_volume == 0:
        return (fixed + unit_cost * min_units) / api, True
    at_scale = unit_cost * units_per_volume < api
    for units in range(min_units, min_units + _MAX_STEPS):
        start = Decimal(units - 1) / units_per_volume if units > min_units else Decimal(0)
        end = Decimal(units) / units_per_volume
        point = max(start, (fixed + unit_cost * units) / api)
        if point <= end:
            return point, at_scale
        if not at_scale:
            return None, False  # each unit adds more than the API charges for its volume: the gap only widens
    return None, at_scale


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _per_mtok(cost: Decimal, tokens: int) -> str:
    return dec((cost * 1_000_000 / tokens).quantize(Decimal("0.0001")))
