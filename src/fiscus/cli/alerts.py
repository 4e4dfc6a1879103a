"""`fiscus alerts check`: the alert table once, from cron or by hand; new alerts go to the notify channels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

alerts_app = typer.Typer(
    help="The alert table: hourly spend, cache misses, session cost, budget burn, quotas, context."
)


@alerts_app.command("check")
def check(
    config: Annotated[
        Path | None, typer.Option("--config", help="fiscus.yaml naming the ledger, budget store, policy, channels.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what stands; claim and send nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Evaluate every alert of the policy's `alerts:` table now. An alert not yet announced in its window (an hour,
    a day, a budget window; claimed in the budget store, so once across every worker and cron host sharing it) goes
    to the notify channels. Prints what stands, marking what was sent. With shared breaker state (`guards.state`,
    beside a SQLite or Redis budget store by default) a spend-rate breaker's level (2 × / 5 × the median hour)
    stands here too; the breakers announce those themselves."""
    from fiscus.alerts import AlertWatch
    from fiscus.cli.ledger_option import ledger_url
    from fiscus.config import load_config
    from fiscus.governor import Governor
    from fiscus.ledger import open_ledger

    cfg = load_config(config)
    url = ledger_url(None, config)
    governor = Governor.from_config(cfg)
    # The breakers' spend-rate levels as every worker shares them (none to read from a memory:// state).
    shared = not cfg.guards.state_url(cfg.budget_store).startswith("memory://")
    breakers = cfg.guards.breaker_registry(budget_store=cfg.budget_store) if shared else None
    try:
        watch = AlertWatch(governor, ledger_url=url, open_ledger=open_ledger, breakers=breakers)
        standing = watch.evaluate() if dry_run else None
        sent = [] if dry_run else watch.check()
        standing = standing if standing is not None else watch.standing
        notifier = getattr(governor, "notifier", None)
        if notifier is not None:
            notifier.flush()
    finally:
        if breakers is not None:
            breakers.close()
        governor.close()
    sent_keys = {(a.key, a.level) for a in sent}
    if as_json:
        rows = [{**a.to_dict(), "sent": (a.key, a.level) in sent_keys} for a in standing]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not standing:
        print("No alert stands.")
        return
    for alert in standing:
        mark = "sent" if (alert.key, alert.level) in sent_keys else "    "
        owner = f" [owner {alert.owner}]" if alert.owner else ""
        print(f"{mark}  {alert.level:<8}  {alert.signal:<18} {alert.message}{owner}")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
