"""`fiscus batches settle`: settle the batches wrapped clients submitted whose provider batch has ended, whether
or not anyone read their results — what the gateway's own poll does for the gateway's batches. Cron-friendly:
one line of what it did; an error is one line and exit 2."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from fiscus.errors import FiscusError

batches_app = typer.Typer(help="Batches submitted through wrapped clients.", no_args_is_help=True)


def _provider_of_kind(config: Any, kind: str) -> str:
    for name, provider in config.providers.items():
        if provider.kind == kind:
            return str(name)
    raise FiscusError(f"no provider of kind {kind!r} in the config's providers: its batches cannot be read")


def _body(answer: Any, what: str) -> bytes:
    if not answer.ok:
        first = answer.body.decode("utf-8", "replace").splitlines()[:1]
        raise FiscusError(f"provider {answer.provider!r} answered {answer.status} to {what}: {''.join(first)[:200]}")
    return bytes(answer.body)


def _described(answer: Any, what: str) -> dict[str, Any]:
    try:
        body = json.loads(_body(answer, what))
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FiscusError(f"provider {answer.provider!r} answered {what} without a JSON object")
    return body


async def _settle_one(config: Any, upstream: Any, governor: Any, store: Any, record: Any) -> Decimal | None:
    """Settle `record` if its provider batch ended (its cost), else None."""
    from fiscus.batches.drive import arun
    from fiscus.batches.ended import has_ended, read_results, to_read
    from fiscus.batches.results import json_lines
    from fiscus.batches.settle import settle_steps

    provider = _provider_of_kind(config, record.wire)
    base = "/batches" if record.wire == "openai" else "/messages/batches"
    batch = _described(await upstream.passthrough(provider, "GET", f"{base}/{record.id}"), f"batch {record.id}")
    if not has_ended(record, batch):
        return None
    read = []
    for ident in to_read(record, batch):
        path = f"/files/{ident}/content" if record.wire == "openai" else f"{base}/{ident}/results"
        read.append(json_lines(_body(await upstream.passthrough(provider, "GET", path), f"GET {path}")))
    results, fmt, missing = read_results(record, batch, read)
    cost = await arun(settle_steps(record, results, fmt, missing=missing), governor)
    await asyncio.to_thread(store.mark_settled, record.id)
    return cost


async def settle_open(config: Any, *, limit: int = 1000) -> tuple[int, int, Decimal, list[str]]:
    """Look at every unsettled SDK batch once: (settled now, still running, their cost, why others could not be
    read). One batch the provider cannot answer for does not keep the others from settling."""
    from fiscus.batches.store import BatchStore
    from fiscus.governor import Governor
    from fiscus.providers import Upstream

    store = BatchStore(config.keys, prefix="fiscus_sdk_")
    governor = Governor.from_config(config)
    settled, running, cost, failed = 0, 0, Decimal(0), []
    try:
        async with Upstream.from_config(config) as upstream:
            for batch_id in await asyncio.to_thread(store.unsettled, limit):
                record = await asyncio.to_thread(store.get, batch_id)
                if record is None or record.settled:
                    continue
                try:
                    spent = await _settle_one(config, upstream, governor, store, record)
                except FiscusError as exc:
                    failed.append(f"batch {batch_id}: {exc}")
                    continue
                if spent is None:
                    running += 1
                else:
                    settled, cost = settled + 1, cost + spent
    finally:
        governor.close()
        store.close()
    return settled, running, cost, failed


@batches_app.command("settle")
def settle(
    config: Annotated[
        Path | None, typer.Option("--config", help="fiscus.yaml: its keys database, providers, ledger, store.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a line.")] = False,
) -> None:
    """Settle every batch a wrapped client submitted whose provider batch has ended: each request recorded once at
    batch prices, the rest of its reservation released (a cancelled batch's unrun requests too). Reads the batches
    and their results with the config's provider credentials (the first provider of kind openai / anthropic).
    Settling again, or a wrapped client settling the same batch, counts nothing twice."""
    from fiscus.config import load_config

    settled, running, cost, failed = asyncio.run(settle_open(load_config(config)))
    if as_json:
        print(json.dumps({"settled": settled, "running": running, "cost_usd": format(cost, "f"), "failed": failed}))
    else:
        print(f"settled {settled} batch(es) (${cost}); {running} still running")
    if failed:  # the ones that could not be read are looked at again on the next run
        raise FiscusError(f"{len(failed)} batch(es) could not be read; first: {failed[0]}")


def register(app: typer.Typer) -> None:
    app.add_typer(batches_app, name="batches")


__all__ = ["register", "settle_open"]
