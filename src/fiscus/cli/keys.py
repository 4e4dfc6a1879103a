"""`fiscus keys create|list|revoke`: virtual keys for the gateway. A key's secret is printed once, never stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fiscus.config import load_config
from fiscus.keys import KeyRing, VirtualKey, open_key_store

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Key store URL: sqlite:///path/keys.db or postgresql://… (default: from --config)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="fiscus.yaml whose `keys` URL to use (default: sqlite:///.fiscus/keys.db)."),
]


def _ring(store: str | None, config: Path | None) -> KeyRing:
    return KeyRing(open_key_store(store or load_config(config).keys))


def create(
    agent: Annotated[str, typer.Option("--agent", help="Agent the key's calls are charged to.")],
    team: Annotated[str, typer.Option("--team", help="Team (product area) the key's calls are charged to.")],
    env: Annotated[str, typer.Option("--env", help="Environment, e.g. prod, staging, dev.")],
    workflow: Annotated[str | None, typer.Option("--workflow", help="Default workflow.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Default tenant (customer).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Default end user.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Organization.")] = None,
    lock: Annotated[
        bool, typer.Option("--lock", help="Ignore x-fiscus-agent / x-fiscus-team request headers for this key.")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the key by.")] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once on stdout; only its SHA-256 is kept."""
    ring = _ring(store, config)
    try:
        secret, key = ring.create(
            agent=agent,
            team=team,
            environment=env,
            workflow=workflow,
            tenant=tenant,
            user=user,
            organization=org,
            locked=lock,
            name=name,
        )
    finally:
        ring.store.close()
    typer.echo(secret)
    print(
        f"created {key.id} ({_attribution_text(key)}{', locked' if key.locked else ''}); "
        "copy the key now: it cannot be shown again",
        file=sys.stderr,
    )


def list_keys(
    store: StoreOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List keys: id, prefix, attribution, created, revoked (never the key itself)."""
    ring = _ring(store, config)
    try:
        keys = ring.list()
    finally:
        ring.store.close()
    if as_json:
        typer.echo(json.dumps([_as_dict(k) for k in keys], indent=2))
        return
    if not keys:
        typer.echo("no keys")
        return
    rows = [("ID", "PREFIX", "NAME", "ATTRIBUTION", "LOCKED", "CREATED", "REVOKED")]
    for k in keys:
        rows.append(
            (
                k.id,
                k.prefix + "…",
                k.name or "-",
                _attribution_text(k),
                "yes" if k.locked else "no",
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as shown by `fiscus keys list` (vk_…).")],
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key; gateways stop accepting it within seconds (their verification cache expires)."""
    ring = _ring(store, config)
    try:
        key = ring.revoke(key_id)
    finally:
        ring.store.close()
    typer.echo(f"revoked {key.id} ({key.prefix}…) at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


def _attribution_text(key: VirtualKey) -> str:
    a = key.attribution
    parts = [
        ("org", a.organization),
        ("team", a.team),
        ("agent", a.agent),
        ("env", a.environment),
        ("workflow", a.workflow),
        ("tenant", a.tenant),
        ("user", a.user),
    ]
    return " ".join(f"{label}={value}" for label, value in parts if value)


def _as_dict(key: VirtualKey) -> dict[str, object]:
    attribution = {k: v for k, v in key.attribution.to_dict().items() if v is not None and k != "api_key"}
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "attribution": attribution,
        "locked": key.locked,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(
        name="keys", help="Virtual keys for the gateway: create, list, revoke.", no_args_is_help=True
    )
    keys_app.command("create")(create)
    keys_app.command("list")(list_keys)
    keys_app.command("revoke")(revoke)
    app.add_typer(keys_app, name="keys")
