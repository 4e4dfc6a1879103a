"""`fiscus audit verify|export`: check the ledger's hash chains; write the trail an auditor reads."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from fiscus.cli.ledger_option import ledger_url
from fiscus.errors import FiscusError
from fiscus.ledger.chain import ChainHead
from fiscus.reports.period import parse_period

LedgerOption = Annotated[
    str | None, typer.Option("--ledger", help="Ledger URL (sqlite:///path or postgresql://…); default from config.")
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="fiscus.yaml naming the ledger.")]


class AuditArgumentError(FiscusError):
    """An audit option's value cannot be used (an anchors file, an output path, a format)."""


def verify_command(
    ledger: LedgerOption = None,
    config: ConfigOption = None,
    anchors: Annotated[
        Path | None,
        typer.Option("--anchors", help="JSON from an earlier `audit verify --json`: its chain heads must still hold."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result (findings and chain heads) as JSON.")
    ] = False,
) -> None:
    """Walk every writer's hash chain and name each row that was edited, deleted or inserted. Exit 0 when the
    ledger is intact, 1 when anything was found. Keep the printed heads (--json) to pass as --anchors later."""
    from fiscus.audit import verify
    from fiscus.ledger import open_ledger

    expected = _anchors(anchors) if anchors is not None else None
    with open_ledger(ledger_url(ledger, config)) as led:
        result = verify(led, anchors=expected)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for finding in result.findings:
            print(f"{finding.kind}: {finding.message}")
        if result.ok:
            print(
                f"ok: {result.rows:,} rows in {result.chains:,} chain(s) verified; nothing edited, deleted or inserted"
            )
        else:
            print(f"TAMPERED: {len(result.findings):,} finding(s) in {result.rows:,} rows, {result.chains:,} chain(s)")
    if not result.ok:
        raise typer.Exit(code=1)


def _anchors(path: Path) -> dict[str, ChainHead]:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        heads = data["heads"] if isinstance(data, dict) else data
        return {h["chain"]: ChainHead(str(h["chain"]), int(h["seq"]), str(h["hash"])) for h in heads}
    except OSError as exc:
        raise AuditArgumentError(f"--anchors {path}: cannot read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise AuditArgumentError(f"--anchors {path}: expected the JSON of `fiscus audit verify --json`") from None


def export_command(
    ledger: LedgerOption = None,
    config: ConfigOption = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From: 30m, 24h, 7d, 4w ago, or an ISO date/time (UTC). Default: all.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until (exclusive), same forms. Default: now.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one record a line, instead of CSV.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Every call (who, which model, tokens, cost, decision, override, policy version) and every policy change
    in the window, oldest first, as CSV or JSON lines. No prompt or completion text, no error text or tags."""
    from fiscus.audit.export import audit_records, write_csv, write_jsonl
    from fiscus.ledger import open_ledger

    start, end = parse_period(since, until, now=datetime.now(UTC))
    write = write_jsonl if as_json else write_csv
    with open_ledger(ledger_url(ledger, config)) as led:
        records = audit_records(led, since=start, until=end)
        if output is None:
            write(records, sys.stdout)
            return
        try:
            with output.open("w", encoding="utf-8", newline="") as fh:
                count = write(records, fh)
        except OSError as exc:
            raise AuditArgumentError(f"--output {output}: cannot write ({exc.strerror})") from None
    print(f"{count:,} records written to {output}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(
        name="audit", help="The tamper-evident audit trail: verify the ledger's chains, export.", no_args_is_help=True
    )
    audit_app.command("verify")(verify_command)
    audit_app.command("export")(export_command)
    app.add_typer(audit_app, name="audit")
