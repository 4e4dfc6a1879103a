"""Pure checks: which level (if any) a measurement reaches, and the plain sentence that says so."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from fiscus.events.alert_events import Level
from fiscus.policy.alerts import Levels

_RATIO = Decimal("0.01")


def level_at_least(levels: Levels, value: Decimal) -> tuple[Level, Decimal] | None:
    """The highest level `value` is at or above (multiples, utilisations)."""
    if value >= levels.critical:
        return Level.CRITICAL, levels.critical
    if value >= levels.warning:
        return Level.WARNING, levels.warning
    return None


def level_above(levels: Levels, value: Decimal) -> tuple[Level, Decimal] | None:
    """The highest level `value` is strictly above (shares: "a cache-miss rate over 40 %")."""
    if value > levels.critical:
        return Level.CRITICAL, levels.critical
    if value > levels.warning:
        return Level.WARNING, levels.warning
    return None


def decimal_median(values: list[Decimal]) -> Decimal:
    return Decimal(median(sorted(values)))


def times(value: Decimal) -> str:
    """2.456 → "2.46×"."""
    return f"{value.quantize(_RATIO, rounding=ROUND_HALF_UP)}×"


def percent(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)} %"


def money(value: Decimal) -> str:
    if value >= 100:
        return f"${value.quantize(Decimal(1)):,}"
    if value >= Decimal("0.01"):
        return f"${value.quantize(Decimal('0.01'))}"
    return f"${value.normalize():f}"
