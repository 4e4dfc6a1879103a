"""The weekly review as Markdown: what a Slack post, a wiki page or an email carries."""

from __future__ import annotations

from decimal import Decimal

from fiscus.reports.weekly.model import Line, WeeklyReport

_HEADINGS = {"team": "Product area", "workflow": "Workflow", "agent": "Agent"}
VERDICTS = {
    "volume": "volume (cost per case steady or down)",
    "efficiency": "efficiency (cost per case up)",
    "down": "down",
    "new": "new",
    "flat": "flat",
}


def money(value: Decimal | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"${value.quantize(Decimal(1)):,}"
    if abs(value) >= Decimal("0.01"):
        return f"${value.quantize(Decimal('0.01'))}"
    return f"${value.quantize(Decimal('0.000001')).normalize():f}"


def pct(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{(value * 100).quantize(Decimal(1))} %"
    return f"+{text}" if signed and value > 0 else text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _spend_table(lines: list[Line], heading: str) -> list[str]:
    out = [
        _row(
            [
                heading,
                "This week",
                "Week before",
                "Change",
                "Cases",
                "Cost per case",
                "Volume effect",
                "Efficiency effect",
                "Reading",
                "P50 target",
                "P95 ceiling",
                "P95 this week",
            ]
        ),
        _row(["---"] * 12),
    ]
    for line in lines:
        flag = " ⚠" if line.above_p95 else ""
        out.append(
            _row(
                [
                    line.name or "(none)",
                    money(line.spend),
                    money(line.spend_before),
                    pct(line.change_rate, signed=True),
                    f"{line.cases:,} ({pct(line.volume_rate, signed=True)})",
                    money(line.cost_per_case),
                    money(line.volume_effect),
                    money(line.efficiency_effect),
                    VERDICTS[line.verdict],
                    money(line.p50_target),
                    money(line.p95_ceiling),
                    money(line.case_p95) + flag,
                ]
            )
        )
    return out


def to_markdown(report: WeeklyReport) -> str:
    t = report.total
    out = [
        f"# {report.title}",
        "",
        f"{report.since:%Y-%m-%d} to {report.until:%Y-%m-%d} (UTC), "
        f"generated {report.generated_at:%Y-%m-%d %H:%M} UTC.",
        "",
        f"**{report.headline}.**",
        "",
        f"Change {money(t.change)}: {money(t.volume_effect)} from volume ({t.cases_before:,} → {t.cases:,} cases), "
        f"{money(t.efficiency_effect)} from cost per case "
        f"({money(t.cost_per_case_before)} → {money(t.cost_per_case)}).",
    ]
    if report.ungoverned_usd:
        out += ["", f"fiscus saved {money(report.saved_usd)} of {money(report.ungoverned_usd)} ungoverned cost."]
    out += ["", "## Anomalies: each needs its owner's answer within 48 hours", ""]
    if report.anomalies:
        out += [_row(["Level", "What", "About", "Owner", "Due (UTC)"]), _row(["---"] * 5)]
        out += [
            _row([a.level, a.summary, a.subject, a.owner or "unassigned", f"{a.due:%Y-%m-%d %H:%M}"])
            for a in report.anomalies
        ]
    else:
        out.append("None this week.")
    for dim, lines in report.lines.items():
        out += ["", f"## Spend by {_HEADINGS.get(dim, dim).lower()}", "", *_spend_table(lines, _HEADINGS.get(dim, dim))]
    out += ["", "## Top movers", ""]
    if report.movers:
        out += [_row(["Who", "Change", "This week", "Week before", "Reading"]), _row(["---"] * 5)]
        out += [
            _row(
                [f"{m.dimension}={m.name}", money(m.change), money(m.spend), money(m.spend_before), VERDICTS[m.verdict]]
            )
            for m in report.movers
        ]
    else:
        out.append("No change from the week before.")
    workflows = report.lines.get("workflow", [])
    out += ["", f"## Prompt cache hit rate per workflow (target {pct(report.cache_target)})", ""]
    out += [_row(["Workflow", "Hit rate", "Against target"]), _row(["---"] * 3)]
    for line in workflows:
        if line.calls:
            ok = "meets" if line.cache_hit_rate >= report.cache_target else "below"
            out.append(_row([line.name or "(none)", pct(line.cache_hit_rate), ok]))
    out += ["", "## Context growth per workflow (input tokens per call)", ""]
    out += [_row(["Workflow", "This week", "Week before", "Growth"]), _row(["---"] * 4)]
    for line in workflows:
        if line.mean_input is not None:
            before = "–" if line.mean_input_before is None else f"{line.mean_input_before.quantize(Decimal(1)):,}"
            growth = line.context_growth
            out.append(
                _row(
                    [
                        line.name or "(none)",
                        f"{line.mean_input.quantize(Decimal(1)):,}",
                        before,
                        "–" if growth is None else pct(growth - 1, signed=True),
                    ]
                )
            )
    out += ["", "## Cost per outcome per case", ""]
    out += [
        _row(["Workflow", "Cases", "Outcome", "Cases reaching it", "Cost per outcome", "Avg case"]),
        _row(["---"] * 6),
    ]
    for group in report.cases:
        name = group.group.get("workflow") or "(none)"
        per = group.cost_per_outcome()
        for label, o in sorted(group.outcomes.items()):
            out.append(
                _row([name, f"{group.cases:,}", label, f"{o.cases:,}", money(per.get(label)), money(o.cost / o.cases)])
            )
        if group.unlabelled.cases:
            out.append(
                _row([name, f"{group.cases:,}", "(no outcome reported)", f"{group.unlabelled.cases:,}", "–", "–"])
            )
    out += ["", *(f"_{note}_" for note in report.notes), ""]
    return "\n".join(out)
