"""What an override may be granted for: a live key, or a budget the policy marks overridable (`override: true`
on the budget or on its block threshold). Checked at grant time so a mistyped name fails there, not silently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fiscus.keys import KeyStore
from fiscus.overrides.model import OverrideError
from fiscus.policy.spec import parse_duration
from fiscus.policy.types import Budget, Policy


def overridable(budget: Budget) -> bool:
    return budget.exhausted_override or any(t.override for t in budget.thresholds)


def check_budget(policy: Policy, name: str) -> None:
    budget = next((b for b in policy.budgets if b.name == name), None)
    if budget is None:
        known = ", ".join(b.name for b in policy.budgets) or "none"
        raise OverrideError(f"no budget named {name!r} in {policy.source or 'the policy'} (budgets: {known})")
    if not overridable(budget):
        raise OverrideError(
            f"budget {name!r} is not marked overridable: set `override: true` on it (or on its block threshold)"
        )


def check_key(keys: KeyStore, key_id: str) -> None:
    key = keys.get(key_id)
    if key is None:
        raise OverrideError(f"no virtual key with id {key_id!r} (see `fiscus keys list`)")
    if key.revoked:
        raise OverrideError(f"virtual key {key_id} is revoked")


def parse_end(lasting: str | None, until: str | None) -> tuple[timedelta | None, datetime | None]:
    """`--for 1h` or `--until 2026-12-05T18:00Z` (a time without a zone is UTC)."""
    if lasting is not None and until is not None:
        raise OverrideError("give --for or --until, not both")
    if lasting is not None:
        try:
            return timedelta(seconds=parse_duration(lasting)), None
        except ValueError as exc:
            raise OverrideError(f"--for: {exc}") from None
    if until is not None:
        try:
            moment = datetime.fromisoformat(until)
        except ValueError:
            raise OverrideError(f"--until: expected an ISO time like 2026-12-05T18:00Z, got {until!r}") from None
        return None, moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None, None
