"""`fiscus report weekly`: the weekly Finance–Engineering review as Markdown, HTML, CSV or JSON; `--send`
delivers it to the notify channels once per week (cron-friendly)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from fiscus.reports.period import ReportArgumentError

Format = Literal["md", "html", "csv", "json"]


def weekly(
    config: Annotated[
        Path | None, typer.Option("--config", help="fiscus.yaml: ledger, budget store, policy, review.weekly.")
    ] = None,
    ledger: Annotated[str | None, typer.Option("--ledger", help="Ledger URL; default from the config.")] = None,
    week: Annotated[
        str | None, typer.Option("--week", help="ISO week, e.g. 2026-W49. Default: the last complete week (UTC).")
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option("--targets", help="`fiscus forecast --json` or `fiscus model --json` output: P50 / P95 per case."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, html (one self-contained page), csv or json.")] = "md",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Deliver the last complete week's review to the notify channels and write it to review.weekly.out_dir,"
            " once per week across every host sharing the budget store (run it from cron).",
        ),
    ] = False,
) -> None:
    """The weekly review: spend by product area, workflow and agent against the P50 target and P95 ceiling per
    case, week over week split into volume and efficiency, anomalies with an owner and a 48-hour due date, top
    movers, cache hit rate per workflow against its target, context growth and cost per outcome per case."""
    from fiscus.cli.ledger_option import ledger_url
    from fiscus.config import load_config
    from fiscus.governor import Governor
    from fiscus.ledger import open_ledger
    from fiscus.reports.weekly import last_complete_week, parse_week, to_csv, to_html, to_markdown
    from fiscus.reports.weekly.delivery import WeeklyDelivery

    chosen = "json" if as_json else fmt
    if chosen not in ("md", "html", "csv", "json"):
        raise ReportArgumentError(f"--format {fmt!r}: use md, html, csv or json")
    now = datetime.now(UTC)
    if week is not None:
        try:
            week_id, since = parse_week(week)
        except ValueError:
            raise ReportArgumentError(f"--week {week!r}: expected an ISO week such as 2026-W49") from None
    else:
        week_id, since = last_complete_week(now)
    cfg = load_config(config)
    settings = cfg.review.weekly
    if targets is not None:
        settings = settings.model_copy(update={"targets": targets})
    url = ledger_url(ledger, config)
    governor = Governor.from_config(cfg.model_copy(update={"ledger": url}))
    try:
        delivery = WeeklyDelivery(governor, settings, ledger_url=url, open_ledger=open_ledger)
        if send:
            sent = delivery.deliver(week_id, since, now)
            notifier = getattr(governor, "notifier", None)
            if notifier is not None:
                notifier.flush()
            if sent is None:
                print(f"The review of {week_id} was delivered before; nothing sent.")
            else:
                print(f"Sent the review of {week_id}: {sent.headline}. Files: {', '.join(sent.files.values())}")
            return
        report = delivery.build(week_id, since, now)
    finally:
        governor.close()
    if chosen == "json":
        text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    else:
        text = {"md": to_markdown, "html": to_html, "csv": to_csv}[chosen](report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"Wrote {out}")
    else:
        sys.stdout.write(text)
