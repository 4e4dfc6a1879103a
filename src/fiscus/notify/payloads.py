"""Pure formatting: one budget or guard event → the JSON body each kind of channel expects."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from fiscus.notify.channels import ChannelConfig
from fiscus.pricing.cost import usd


def event_dict(event: object) -> dict[str, Any]:
    to_dict = getattr(event, "to_dict", None)
    data = to_dict() if callable(to_dict) else {"event": repr(event)}
    data.setdefault("type", type(event).__name__)
    return data


# What each action does to the calls, in words (the action's name alone leaves a reader guessing).
_DOES = {
    "notify": "notify only",
    "warn": "calls carry a warning",
    "downgrade": "calls go one model tier down",
    "compress": "contexts are compressed",
    "throttle": "calls are throttled",
    "partial": "calls get a partial answer, no model called",
    "block": "calls are refused (429)",
}


def summary(data: dict[str, Any]) -> str:
    """One line a person can act on: which budget and scope, dollars used of the limit, what happens to the calls
    and when it resets, e.g. "fiscus: budget growth-prod (team=growth environment=prod) at 81%: $6,480.00 of
    $8,000.00 used; calls carry a warning (warn); resets 2026-12-01 00:00 UTC; last call by agent planner"."""
    kind = data.get("type", "event")
    if kind in ("budget_threshold_crossed", "budget_exhausted"):
        what = "exhausted" if kind == "budget_exhausted" else f"at {_pct(data.get('utilisation'))}"
        action = str(data.get("action") or "")
        line = f"fiscus: budget {_budget(data)} {what}: {_used(data)}; {_DOES.get(action, action)} ({action})"
        line += f"; resets {_when(data.get('resets_at'))}" if data.get("resets_at") else "; never resets"
        return line + _caller(data)
    if kind == "budget_off_pace":
        line = f"fiscus: budget {_budget(data)} at {_pct(data.get('utilisation'))} ({_used(data)}) is on pace for "
        line += f"{_pct(data.get('projected'))} by its reset"
        if data.get("exhausts_at"):
            line += f"; at this pace its limit falls {_when(data['exhausts_at'])}"
        if data.get("resets_at"):
            line += f", the window resets {_when(data['resets_at'])}"
        return line
    if kind == "alert_raised":
        owner = f" Owner: {data['owner']}." if data.get("owner") else ""
        return f"fiscus {data.get('level')}: {data.get('message')}.{owner}"
    if kind == "weekly_report":
        return f"fiscus: {data.get('title')}: {data.get('headline')}"
    if kind in ("override_granted", "override_revoked", "override_used"):
        return _override(kind, data)
    if kind == "spend_rate_level":
        return f"fiscus {data.get('level')}: {data.get('message')}"
    if str(kind).startswith("budget_store_"):
        return f"fiscus: {data.get('message')}"
    if "loop" in str(kind).lower():
        return f"fiscus: loop detected ({data.get('kind') or data.get('reason') or kind}) in {_who(data)}"
    if "breaker" in str(kind).lower():
        name = data.get("breaker") or data.get("name") or data.get("scope") or "?"
        line = f"fiscus: circuit breaker {name} opened ({data.get('reason') or 'unknown reason'})"
        if data.get("message"):
            line += f": {data['message']}"
        if data.get("reopens_at"):
            line += f"; half-open {_when(data['reopens_at'])}"
        return line
    return f"fiscus: {kind}"


def _budget(data: dict[str, Any]) -> str:
    """The budget's name and the scope of the instance: `per-user (user=u1)`."""
    scope = data.get("scope")
    text = " ".join(f"{k}={v}" for k, v in scope.items()) if isinstance(scope, dict) else ""
    text = text or _instance(data)
    return f"{data.get('budget')} ({text})" if text else str(data.get("budget"))


def _used(data: dict[str, Any]) -> str:
    spent, limit = data.get("spent_usd"), data.get("limit_usd")
    if spent is None:
        return "use unknown"
    if limit is None:  # a token or request budget: its own meter, and what the dollars came to
        meter = data.get("meter") or "units"
        return f"{_count(data.get('used'))} of {_count(data.get('limit'))} {meter} used ({_money(spent)} spent)"
    return f"{_money(spent)} of {_money(limit)} used"


def _caller(data: dict[str, Any]) -> str:
    who = [f"{k} {data[k]}" for k in ("agent", "team") if data.get(k)]
    return f"; last call by {', '.join(who)}" if who else ""


def _override(kind: str, data: dict[str, Any]) -> str:
    target = f"key {data['key_id']}" if data.get("key_id") else f"budget {data.get('budget')}"
    if kind == "override_revoked":
        return f"fiscus: override {data.get('id')} for {target} revoked"
    if kind == "override_used":
        lifted = [f"budget {name}" for name in data.get("budgets") or []]
        lifted += [_guard(name) for name in data.get("guards") or []]
        caller = f"key {data['key_id']}" if data.get("key_id") else "a caller"
        past = ", ".join(lifted) or "?"
        return f"fiscus: override {data.get('id')} let a call by {caller} past {past}" + _caller(data)
    line = f"fiscus: override {data.get('id')} granted for {target} until {_when(data.get('expires_at'))}"
    return line + f" by {data.get('granted_by') or 'an operator'}: {data.get('reason')}"


def _guard(name: object) -> str:
    return "the loop stop" if name == "loop" else f"the open breaker {name}"


def _money(value: object) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "$?"
    return f"${amount:,.2f}" if abs(amount) >= 1 else usd(amount)


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _when(value: object) -> str:
    """An ISO time as `2026-12-01 00:00 UTC`."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _instance(data: dict[str, Any]) -> str:
    """The per-value part of a budget instance's key (`b:<budget>|user=alice` → `user=alice`); "" for the budget
    as a whole."""
    stem = str(data.get("instance") or "").removeprefix("b:")
    budget = str(data.get("budget") or "")
    rest = stem[len(budget) :] if stem.startswith(budget) else stem
    return " ".join(unquote(part) for part in rest.split("|") if part)


def payload(channel: ChannelConfig, event: object) -> dict[str, Any]:
    data = event_dict(event)
    text = summary(data)
    if channel.kind == "slack":
        return {"text": text}
    if channel.kind == "pagerduty":
        dedup = "|".join(str(data.get(k, "")) for k in ("type", "budget", "instance", "window", "action"))
        if data.get("type") == "alert_raised":
            dedup = "|".join(
                ("alert_raised", str(data.get("signal")), str(data.get("subject")), str(data.get("window")))
            )
        return {
            "routing_key": channel.routing_key(),
            "event_action": "trigger",
            "dedup_key": dedup,
            "payload": {
                "summary": text,
                "source": "fiscus",
                "severity": data["level"] if data.get("type") == "alert_raised" else channel.severity,
                "custom_details": data,
            },
        }
    return {"summary": text, "event": data}


def _pct(value: object) -> str:
    try:
        return f"{(Decimal(str(value)) * 100).quantize(Decimal(1))}%"
    except (InvalidOperation, ValueError):
        return "?"


def _who(data: dict[str, Any]) -> str:
    for key in ("session", "agent", "scope"):
        if data.get(key):
            return f"{key} {data[key]}"
    return "an agent"
