"""The weekly review as one self-contained HTML page: inline CSS and SVG charts, no script, nothing fetched."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from fiscus.reports.weekly.markdown import VERDICTS, money, pct
from fiscus.reports.weekly.model import Line, WeeklyReport

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:2rem auto;
max-width:1100px;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:2rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .45rem;border-bottom:1px solid #e3e6ec}
th{color:#6b7385;font-weight:500;font-size:.8rem}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#c8412e}.ok{color:#2f8f5b}.muted{color:#6b7385}
.headline{font-size:1.05rem;background:#f6f7f9;border:1px solid #e3e6ec;border-radius:8px;padding:.8rem 1rem}
"""
_BAR, _BEFORE, _TARGET = "#4a6fd4", "#b9c6ee", "#c8412e"


def _h(text: object) -> str:
    return escape(str(text))


def _bars_this_vs_before(lines: list[Line], title: str) -> str:
    """Horizontal bars: this week (dark) over the week before (light), per group."""
    shown = [line for line in lines if line.spend or line.spend_before][:10]
    if not shown:
        return ""
    top = max(max(line.spend, line.spend_before) for line in shown) or Decimal(1)
    row_h, label_w, width = 34, 170, 640
    height = row_h * len(shown) + 24
    parts = [
        f'<svg role="img" aria-label="{_h(title)}" width="{width + label_w + 90}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="12">'
    ]
    for i, line in enumerate(shown):
        y = 8 + i * row_h
        now_w = float(line.spend / top) * width
        then_w = float(line.spend_before / top) * width
        parts.append(f'<text x="0" y="{y + 14}">{_h((line.name or "(none)")[:24])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{now_w:.1f}" height="12" fill="{_BAR}"/>')
        parts.append(f'<rect x="{label_w}" y="{y + 14}" width="{then_w:.1f}" height="8" fill="{_BEFORE}"/>')
        parts.append(f'<text x="{label_w + now_w + 6:.1f}" y="{y + 11}">{_h(money(line.spend))}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 4}" fill="#6b7385">dark: this week · light: the week before</text>')
    parts.append("</svg>")
    return "".join(parts)


def _daily(report: WeeklyReport) -> str:
    if not report.daily:
        return ""
    top = max(value for _, value in report.daily) or Decimal(1)
    col, height = 70, 140
    parts = [
        f'<svg role="img" aria-label="spend per day" width="{col * len(report.daily) + 20}" '
        f'height="{height + 40}" xmlns="http://www.w3.org/2000/svg" font-size="11">'
    ]
    for i, (day, value) in enumerate(report.daily):
        h = float(value / top) * height
        x = 10 + i * col
        parts.append(
            f'<rect x="{x}" y="{height - h + 10:.1f}" width="{col - 16}" height="{h:.1f}" fill="{_BAR}">'
            f"<title>{_h(day)}: {_h(money(value))}</title></rect>"
        )
        parts.append(f'<text x="{x}" y="{height + 25}">{_h(day[5:])}</text>')
        parts.append(f'<text x="{x}" y="{height - h + 6:.1f}">{_h(money(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cache_chart(report: WeeklyReport) -> str:
    lines = [line for line in report.lines.get("workflow", []) if line.calls][:10]
    if not lines:
        return ""
    row_h, label_w, width = 24, 170, 500
    height = row_h * len(lines) + 24
    target_x = label_w + float(report.cache_target) * width
    parts = [
        f'<svg role="img" aria-label="cache hit rate per workflow" width="{label_w + width + 80}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="12">'
    ]
    for i, line in enumerate(lines):
        y = 6 + i * row_h
        w = float(line.cache_hit_rate) * width
        colour = "#2f8f5b" if line.cache_hit_rate >= report.cache_target else "#c98a12"
        parts.append(f'<text x="0" y="{y + 12}">{_h((line.name or "(none)")[:24])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="14" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 12}">{_h(pct(line.cache_hit_rate))}</text>')
    parts.append(
        f'<line x1="{target_x:.1f}" x2="{target_x:.1f}" y1="0" y2="{height - 18}" stroke="{_TARGET}" '
        'stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text x="{target_x + 4:.1f}" y="{height - 4}" fill="{_TARGET}">target {_h(pct(report.cache_target))}'
        "</text></svg>"
    )
    return "".join(parts)


def _table(head: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    th = "".join(f"<th>{_h(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _spend_rows(lines: list[Line]) -> list[list[str]]:
    rows = []
    for line in lines:
        flag = ' <span class="bad">above P95</span>' if line.above_p95 else ""
        reading = VERDICTS[line.verdict]
        css = "bad" if line.verdict == "efficiency" else "ok" if line.verdict == "volume" else "muted"
        rows.append(
            [
                _h(line.name or "(none)"),
                _h(money(line.spend)),
                _h(money(line.spend_before)),
                _h(pct(line.change_rate, signed=True)),
                _h(f"{line.cases:,}"),
                _h(money(line.cost_per_case)),
                _h(money(line.volume_effect)),
                _h(money(line.efficiency_effect)),
                f'<span class="{css}">{_h(reading)}</span>',
                _h(money(line.p50_target)),
                _h(money(line.p95_ceiling)),
                _h(money(line.case_p95)) + flag,
            ]
        )
    return rows


def to_html(report: WeeklyReport) -> str:
    headings = {"team": "product area", "workflow": "workflow", "agent": "agent"}
    t = report.total
    body = [
        f"<h1>{_h(report.title)}</h1>",
        f'<p class="muted">{report.since:%Y-%m-%d} to {report.until:%Y-%m-%d} (UTC) · generated '
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC</p>",
        f'<p class="headline"><strong>{_h(report.headline)}.</strong><br>Change {_h(money(t.change))}: '
        f"{_h(money(t.volume_effect))} from volume ({t.cases_before:,} → {t.cases:,} cases), "
        f"{_h(money(t.efficiency_effect))} from cost per case.</p>",
        "<h2>Anomalies: each needs its owner's answer within 48 hours</h2>",
    ]
    if report.anomalies:
        body.append(
            _table(
                ["level", "what", "about", "owner", "due (UTC)"],
                [
                    [
                        _h(a.level),
                        _h(a.summary),
                        _h(a.subject),
                        _h(a.owner or "unassigned"),
                        _h(f"{a.due:%Y-%m-%d %H:%M}"),
                    ]
                    for a in report.anomalies
                ],
                set(),
            )
        )
    else:
        body.append("<p>None this week.</p>")
    body += ["<h2>Spend per day</h2>", _daily(report)]
    head = [
        "",
        "this week",
        "week before",
        "change",
        "cases",
        "cost per case",
        "volume effect",
        "efficiency effect",
        "reading",
        "P50 target",
        "P95 ceiling",
        "P95 this week",
    ]
    for dim, lines in report.lines.items():
        label = headings.get(dim, dim)
        body += [f"<h2>Spend by {_h(label)}</h2>", _bars_this_vs_before(lines, f"spend by {label}")]
        body.append(_table([label, *head[1:]], _spend_rows(lines), {1, 2, 3, 4, 5, 6, 7, 9, 10, 11}))
    body.append("<h2>Top movers</h2>")
    body.append(
        _table(
            ["who", "change", "this week", "week before", "reading"],
            [
                [
                    _h(f"{m.dimension}={m.name}"),
                    _h(money(m.change)),
                    _h(money(m.spend)),
                    _h(money(m.spend_before)),
                    _h(VERDICTS[m.verdict]),
                ]
                for m in report.movers
            ],
            {1, 2, 3},
        )
        if report.movers
        else "<p>No change from the week before.</p>"
    )
    body += [
        f"<h2>Prompt cache hit rate per workflow (target {_h(pct(report.cache_target))})</h2>",
        _cache_chart(report),
    ]
    growth_rows = [
        [
            _h(line.name or "(none)"),
            _h(f"{line.mean_input.quantize(Decimal(1)):,}"),
            _h("–" if line.mean_input_before is None else f"{line.mean_input_before.quantize(Decimal(1)):,}"),
            _h("–" if line.context_growth is None else pct(line.context_growth - 1, signed=True)),
        ]
        for line in report.lines.get("workflow", [])
        if line.mean_input is not None
    ]
    body += [
        "<h2>Context growth per workflow (input tokens per call)</h2>",
        _table(["workflow", "this week", "week before", "growth"], growth_rows, {1, 2, 3}),
    ]
    outcome_rows = []
    for group in report.cases:
        name = group.group.get("workflow") or "(none)"
        per = group.cost_per_outcome()
        for label, o in sorted(group.outcomes.items()):
            outcome_rows.append(
                [_h(name), _h(label), _h(f"{o.cases:,}"), _h(money(per.get(label))), _h(money(o.cost / o.cases))]
            )
        if group.unlabelled.cases:
            outcome_rows.append([_h(name), "(no outcome reported)", _h(f"{group.unlabelled.cases:,}"), "–", "–"])
    body += [
        "<h2>Cost per outcome per case</h2>",
        _table(["workflow", "outcome", "cases", "cost per outcome", "average case"], outcome_rows, {2, 3, 4}),
    ]
    body += [f'<p class="muted">{_h(note)}</p>' for note in report.notes]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_h(report.title)}</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
