"""Per-case targets for the weekly review: P50 (the operating target) and P95 (the ceiling) of one case, from
the policy's `targets:`, or from what `fiscus forecast --json` / `fiscus model --json` wrote."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fiscus.errors import FiscusError
from fiscus.policy.types import Policy, RunTarget

Targets = dict[str, dict[str, RunTarget]]  # dimension → value → target


class TargetsFileError(FiscusError):
    """A targets file is not the JSON `fiscus forecast` or `fiscus model` writes."""


def policy_targets(policy: Policy) -> Targets:
    return {dim: dict(values) for dim, values in policy.targets.items()}


def load_targets(path: Path) -> Targets:
    """`fiscus forecast --json` (its `by` and groups) or `fiscus model --json` (workflows and task classes)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetsFileError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise TargetsFileError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TargetsFileError(f"{path}: expected the JSON of fiscus forecast or fiscus model")
    found: Targets = {}
    if "groups" in data and "by" in data:
        _take(found, str(data["by"]), data["groups"], "group", "forecast", path)
    elif "workflows" in data or "task_classes" in data:
        _take(found, "workflow", data.get("workflows") or [], "name", "model", path)
        _take(found, "task_class", data.get("task_classes") or [], "name", "model", path)
    else:
        raise TargetsFileError(f"{path}: expected the JSON of fiscus forecast (by, groups) or fiscus model")
    return found


def _take(found: Targets, dim: str, groups: Any, key: str, source: str, path: Path) -> None:
    if not isinstance(groups, list):
        raise TargetsFileError(f"{path}: {dim} groups must be a list")
    for index, group in enumerate(groups):
        try:
            name = group[key]
            cost = group["per_run"]["cost_usd"]
            target = RunTarget(Decimal(str(cost["p50"])), Decimal(str(cost["p95"])), source)
        except (KeyError, TypeError, InvalidOperation):
            raise TargetsFileError(f"{path}: group {index} has no per_run.cost_usd p50 / p95") from None
        if name is not None:
            found.setdefault(dim, {})[str(name)] = target


def merged(*layers: Targets) -> Targets:
    """Later layers win per (dimension, value)."""
    out: Targets = {}
    for layer in layers:
        for dim, values in layer.items():
            out.setdefault(dim, {}).update(values)
    return out
