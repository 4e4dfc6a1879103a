"""The weekly review as one CSV for a spreadsheet: a `section` column (spend, anomaly, mover, outcome), exact
decimals."""

from __future__ import annotations

import csv
import io

from fiscus.reports.weekly.model import WeeklyReport

HEADER = (
    "section",
    "dimension",
    "name",
    "spend_usd",
    "spend_before_usd",
    "change_usd",
    "cases",
    "cases_before",
    "cost_per_case_usd",
    "volume_effect_usd",
    "efficiency_effect_usd",
    "verdict",
    "p50_target_usd",
    "p95_ceiling_usd",
    "case_p95_usd",
    "above_p95",
    "cache_hit_rate",
    "mean_input_tokens",
    "mean_input_tokens_before",
    "context_growth",
    "outcome",
    "cost_per_outcome_usd",
    "owner",
    "due",
    "detail",
)


def to_csv(report: WeeklyReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n", extrasaction="ignore", restval="")
    writer.writeheader()
    for line in [report.total, *(line for lines in report.lines.values() for line in lines)]:
        writer.writerow({"section": "spend", **_none_blank(line.to_dict())})
    for anomaly in report.anomalies:
        data = anomaly.to_dict()
        writer.writerow(
            {
                "section": "anomaly",
                "dimension": data["kind"],
                "name": data["subject"],
                "owner": data["owner"],
                "due": data["due"],
                "verdict": data["level"],
                "detail": data["summary"],
            }
        )
    for mover in report.movers:
        writer.writerow({"section": "mover", **_none_blank(mover.to_dict())})
    for group in report.cases:
        data = group.to_dict()
        for outcome in data["outcomes"]:
            writer.writerow(
                {
                    "section": "outcome",
                    "dimension": "workflow",
                    "name": group.group.get("workflow") or "",
                    "cases": outcome["cases"],
                    "spend_usd": outcome["cost_usd"],
                    "outcome": outcome["outcome"],
                    "cost_per_outcome_usd": outcome["cost_per_outcome_usd"],
                }
            )
        if group.unlabelled.cases:
            writer.writerow(
                {
                    "section": "outcome",
                    "dimension": "workflow",
                    "name": group.group.get("workflow") or "",
                    "cases": group.unlabelled.cases,
                    "spend_usd": data["no_outcome"]["cost_usd"],
                    "outcome": "(no outcome reported)",
                }
            )
    return out.getvalue()


def _none_blank(data: dict[str, object]) -> dict[str, object]:
    return {k: "" if v is None else v for k, v in data.items()}
