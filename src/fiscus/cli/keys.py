"""`fiscus keys create|list|allow|revoke`: virtual keys for the gateway. A key's secret is printed once, never
stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fiscus.config import load_config
from fiscus.keys import KeyClaims, KeyRing, VirtualKey, open_key_store

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Key store URL: sqlite:///path/keys.db or postgresql://… (default: from --config)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="fiscus.yaml whose `keys` URL to use (default: sqlite:///.fiscus/keys.db)."),
]


_PATTERNS = "Repeat the option for several; glob patterns such as 'research-*' allowed."


def _allow(help_text: str, flag: str) -> object:
    return typer.Option(flag, help=f"{help_text} {_PATTERNS}")


AllowAgent = Annotated[
    list[str] | None, _allow("Agents the key's requests may claim with x-fiscus-agent.", "--allow-agent")
]
AllowTeam = Annotated[
    list[str] | None, _allow("Teams the key's requests may claim with x-fiscus-team.", "--allow-team")
]
AllowWorkflow = Annotated[
    list[str] | None, _allow("Workflows its requests may claim (default: any).", "--allow-workflow")
]
AllowTaskClass = Annotated[
    list[str] | None, _allow("Task classes its requests may claim (default: any).", "--allow-task-class")
]
AllowTenant = Annotated[list[str] | None, _allow("Tenants its requests may claim (default: any).", "--allow-tenant")]
AllowUser = Annotated[list[str] | None, _allow("End users its requests may claim (default: any).", "--allow-user")]
OnDisallowedOption = Annotated[
    str,
    typer.Option(
        "--on-disallowed",
        help="A header claiming a value the key does not allow: refuse (403 naming the header) or ignore "
        "(the key's own value stands; logged, and named in x-fiscus-ignored-headers).",
    ),
]


def _ring(store: str | None, config: Path | None) -> KeyRing:
    return KeyRing(open_key_store(store or load_config(config).keys))


def _claims(
    on_disallowed: str,
    agents: list[str] | None,
    teams: list[str] | None,
    workflows: list[str] | None,
    task_classes: list[str] | None,
    tenants: list[str] | None,
    users: list[str] | None,
) -> KeyClaims:
    given = {
        "agent": agents,
        "team": teams,
        "workflow": workflows,
        "task_class": task_classes,
        "tenant": tenants,
        "user": users,
    }
    return KeyClaims.of({dim: patterns for dim, patterns in given.items() if patterns}, on_disallowed)


def create(
    agent: Annotated[str, typer.Option("--agent", help="Agent the key's calls are charged to.")],
    team: Annotated[str, typer.Option("--team", help="Team (product area) the key's calls are charged to.")],
    env: Annotated[str, typer.Option("--env", help="Environment, e.g. prod, staging, dev.")],
    workflow: Annotated[str | None, typer.Option("--workflow", help="Default workflow.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Default tenant (customer).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Default end user.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Organization.")] = None,
    allow_agent: AllowAgent = None,
    allow_team: AllowTeam = None,
    allow_workflow: AllowWorkflow = None,
    allow_task_class: AllowTaskClass = None,
    allow_tenant: AllowTenant = None,
    allow_user: AllowUser = None,
    on_disallowed: OnDisallowedOption = "refuse",
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the key by.")] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once on stdout; only its SHA-256 is kept.

    Request headers may only refine what a key is: without --allow-agent / --allow-team its requests cannot
    claim another agent or team (organization and environment are always the key's); workflow, task class,
    tenant and user are free unless an --allow-… list names what they may be."""
    claims = _claims(on_disallowed, allow_agent, allow_team, allow_workflow, allow_task_class, allow_tenant, allow_user)
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
            claims=claims,
            name=name,
        )
    finally:
        ring.store.close()
    typer.echo(secret)
    print(
        f"created {key.id} ({_attribution_text(key)}; may claim {_claims_text(key)}); "
        "copy the key now: it cannot be shown again",
        file=sys.stderr,
    )


def allow(
    key_id: Annotated[str, typer.Argument(help="The key's id, as shown by `fiscus keys list` (vk_…).")],
    allow_agent: AllowAgent = None,
    allow_team: AllowTeam = None,
    allow_workflow: AllowWorkflow = None,
    allow_task_class: AllowTaskClass = None,
    allow_tenant: AllowTenant = None,
    allow_user: AllowUser = None,
    on_disallowed: OnDisallowedOption = "refuse",
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Set what a key's requests may claim: the lists given replace the key's whole allow-list (none: it may
    claim nothing beyond its own agent and team). Gateways apply it within seconds."""
    claims = _claims(on_disallowed, allow_agent, allow_team, allow_workflow, allow_task_class, allow_tenant, allow_user)
    ring = _ring(store, config)
    try:
        key = ring.set_claims(key_id, claims)
    finally:
        ring.store.close()
    typer.echo(f"{key.id} ({key.prefix}…) may claim {_claims_text(key)}")


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
    rows = [("ID", "PREFIX", "NAME", "ATTRIBUTION", "MAY CLAIM", "CREATED", "REVOKED")]
    for k in keys:
        rows.append(
            (
                k.id,
                k.prefix + "…",
                k.name or "-",
                _attribution_text(k),
                _claims_text(k),
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


def _claims_text(key: VirtualKey) -> str:
    """`agent=research-* (else refuse)`: the allow-list and what a request outside it gets."""
    return f"{key.claims.label()} (else {key.claims.on_disallowed})"


def _as_dict(key: VirtualKey) -> dict[str, object]:
    attribution = {k: v for k, v in key.attribution.to_dict().items() if v is not None and k != "api_key"}
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "attribution": attribution,
        "allow": key.claims.to_dict(),
        "on_disallowed": str(key.claims.on_disallowed),
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(
        name="keys", help="Virtual keys for the gateway: create, list, allow, revoke.", no_args_is_help=True
    )
    keys_app.command("create")(create)
    keys_app.command("list")(list_keys)
    keys_app.command("allow")(allow)
    keys_app.command("revoke")(revoke)
    app.add_typer(keys_app, name="keys")
