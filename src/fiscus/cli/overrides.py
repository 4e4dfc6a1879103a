"""`fiscus overrides grant|list|revoke`: an operator's leave for a key (or a budget) to pass the refusals the policy
marks overridable, until an expiry, for a reason. Kept beside the virtual keys; gateways apply it within seconds;
grants and revocations go to the config's notify channels."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from fiscus.config import FiscusConfig, load_config
from fiscus.overrides import Override, OverrideBook, open_override_store

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Where overrides are kept (default: the config's `keys` database)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="fiscus.yaml: its keys database, policy and notify channels."),
]


def _book(config: FiscusConfig, store: str | None) -> OverrideBook:
    return OverrideBook(open_override_store(store or config.keys))


def _announce(config: FiscusConfig, event: object) -> None:
    """To the config's default channels, as the gateway would; delivered before the command returns."""
    if not config.notify.channels:
        return
    from fiscus.notify import Notifier

    notifier = Notifier(config.notify)
    notifier(event)
    notifier.close(timeout=10)


def grant(
    reason: Annotated[str, typer.Option("--reason", help="Why: announced, and kept with the grant.")],
    key: Annotated[str | None, typer.Option("--key", help="The key (vk_…) whose calls may pass.")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="The budget every call may pass.")] = None,
    lasting: Annotated[str | None, typer.Option("--for", help="How long: 30m, 1h, 2d.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Until when: 2026-12-05T18:00Z (UTC if no zone).")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who grants it (default: your user name).")] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Grant an override for a key (every budget its calls fall under) or a budget (every caller): the calls pass
    each refusal the policy marks overridable (`override: true`) until it ends, and a key's calls also the open
    breakers and loop stops the config's guards.overridable names; each such call's ledger event names it
    (tags.override)."""
    from fiscus.events.override_events import OverrideGranted
    from fiscus.keys import open_key_store
    from fiscus.overrides.targets import check_budget, check_key, parse_end
    from fiscus.policy import load_policy

    cfg = load_config(config)
    lasting_for, ends = parse_end(lasting, until)
    if key is not None:
        with open_key_store(store or cfg.keys) as keys:
            check_key(keys, key)
    if budget is not None and cfg.policy is not None:
        check_budget(load_policy(cfg.policy), budget)
    book = _book(cfg, store)
    try:
        granted = book.grant(
            reason=reason,
            key_id=key,
            budget=budget,
            until=ends,
            lasting=lasting_for,
            granted_by=by or _user(),
        )
    finally:
        book.store.close()
    _announce(
        cfg,
        OverrideGranted(
            granted.id, granted.reason, granted.expires_at, granted.key_id, granted.budget, granted.granted_by
        ),
    )
    typer.echo(f"granted {granted.id} for {granted.target} until {granted.expires_at:%Y-%m-%d %H:%M:%S %Z}")


def list_overrides(
    every: Annotated[bool, typer.Option("--all", help="Revoked and expired ones too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """The overrides in force (with --all, every one granted): id, for, until, by, reason, state."""
    from datetime import UTC, datetime

    book = _book(load_config(config), store)
    try:
        found = book.list(every=every)
    finally:
        book.store.close()
    if as_json:
        typer.echo(json.dumps([o.to_dict() for o in found], indent=2))
        return
    if not found:
        typer.echo("no overrides" + ("" if every else " in force"))
        return
    now = datetime.now(UTC)
    rows = [("ID", "FOR", "UNTIL (UTC)", "BY", "STATE", "REASON")]
    rows += [_row(o, o.state(now)) for o in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def revoke(
    override_id: Annotated[str, typer.Argument(help="The override's id (ov_…), as `fiscus overrides list` shows.")],
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """End an override now; gateways stop applying it within seconds."""
    from fiscus.events.override_events import OverrideRevoked

    cfg = load_config(config)
    book = _book(cfg, store)
    try:
        revoked = book.revoke(override_id)
    finally:
        book.store.close()
    _announce(cfg, OverrideRevoked(revoked.id, revoked.key_id, revoked.budget))
    typer.echo(f"revoked {revoked.id} ({revoked.target})")


def _row(o: Override, state: str) -> tuple[str, str, str, str, str, str]:
    return (o.id, o.target, f"{o.expires_at:%Y-%m-%d %H:%M}", o.granted_by or "-", state, o.reason)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None


def register(app: typer.Typer) -> None:
    overrides_app = typer.Typer(
        name="overrides",
        help="Overrides: let a key or a budget pass overridable refusals for a while: grant, list, revoke.",
        no_args_is_help=True,
    )
    overrides_app.command("grant")(grant)
    overrides_app.command("list")(list_overrides)
    overrides_app.command("revoke")(revoke)
    app.add_typer(overrides_app, name="overrides")
