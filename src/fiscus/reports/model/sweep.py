"""`--sweep researcher.steps=1,5,7`: the model again for each value of one assumption, to show what the month
depends on (calls per request, cache hit rate, output length…)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fiscus.errors import ConfigError
from fiscus.pricing import PriceCatalogue
from fiscus.reports.model.result import ModelResult, model_workload
from fiscus.reports.model.spec import load_spec
from fiscus.reports.spend import dec

_SECTIONS = ("agents.", "workflows.")


@dataclass(frozen=True, slots=True)
class Sweep:
    setting: str  # the dotted field, e.g. agents.researcher.steps
    points: list[tuple[Any, ModelResult]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "points": [
                {
                    "value": value,
                    "month_usd": {"p50": dec(result.month_p50), "p95": dec(result.month_p95)},
                    "workflows": {
                        w.name: {
                            "calls_p50": w.forecast.calls_p50,
                            "month_p50_usd": dec(w.forecast.period_p50 or 0),
                            "month_p95_usd": dec(w.forecast.period_p95 or 0),
                        }
                        for w in result.workflows
                    },
                }
                for value, result in self.points
            ],
        }


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """`researcher.steps=1,5,7` → ("agents.researcher.steps", [1, 5, 7]); a path may also start at workflows."""
    setting, sep, values = text.partition("=")
    setting = setting.strip()
    if not sep or setting.count(".") < 1 or not values.strip():
        raise ConfigError(f"--sweep {text!r}: expected AGENT.FIELD=V1,V2,... e.g. researcher.steps=1,5,7")
    if not setting.startswith(_SECTIONS):
        setting = f"agents.{setting}"
    try:
        parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    except yaml.YAMLError:
        raise ConfigError(f"--sweep {text!r}: a value is not a number or a word") from None
    return setting, parsed


def sweep(path: Path, text: str, catalogue: PriceCatalogue, *, changes: dict[str, Any] | None = None) -> Sweep:
    setting, values = parse_sweep(text)
    points = []
    for value in values:
        spec = load_spec(path, changes={**(changes or {}), setting: value})
        points.append((value, model_workload(spec, catalogue, source=str(path))))
    return Sweep(setting, points)
