"""Pure formatting: one budget or guard event → the JSON body each kind of channel expects."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fiscus.notify.channels import ChannelConfig


def event_dict(event: object) -> dict[str, Any]:
    to_dict = getattr(event, "to_dict", None)
    data = to_dict() if callable(to_dict) else {"event": repr(event)}
    data.setdefault("type", type(event).__name__)
    return data


def summary(data: dict[str, Any]) -> str:
    """One line a person can act on, e.g. "fiscus: budget growth-prod at 80% (warn), resets 2026-12-01"."""
    kind = data.get("type", "event")
    if kind in ("budget_threshold_crossed", "budget_exhausted"):
        pct = _pct(data.get("utilisation"))
        what = "exhausted" if kind == "budget_exhausted" else f"at {pct}"
        line = f"fiscus: budget {data.get('budget')} {what} ({data.get('action')})"
        if instance := _instance(data):
            line += f" for {instance}"
        if data.get("resets_at"):
            line += f", resets {data['resets_at']}"
        return line
    if kind == "budget_off_pace":
        line = f"fiscus: budget {data.get('budget')} at {_pct(data.get('utilisation'))} is on pace for "
        line += f"{_pct(data.get('projected'))} by its reset"
        if instance := _instance(data):
            line += f" ({instance})"
        if data.get("exhausts_at"):
            line += f"; its limit falls {data['exhausts_at']}"
        return line
    if kind == "alert_raised":
        owner = f" Owner: {data['owner']}." if data.get("owner") else ""
        return f"fiscus {data.get('level')}: {data.get('message')}.{owner}"
    if kind == "weekly_report":
        return f"fiscus: {data.get('title')}: {data.get('headline')}"
    if "loop" in str(kind).lower():
        return f"fiscus: loop detected ({data.get('kind') or data.get('reason') or kind}) in {_who(data)}"
    if "breaker" in str(kind).lower():
        return f"fiscus: circuit breaker {data.get('breaker') or data.get('name')} opened ({data.get('reason')})"
    return f"fiscus: {kind}"


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
        return f"{float(str(value)) * 100:.0f}%"
    except (TypeError, ValueError):
        return "?"


def _who(data: dict[str, Any]) -> str:
    for key in ("session", "agent", "scope"):
        if data.get(key):
            return f"{key} {data[key]}"
    return "an agent"
