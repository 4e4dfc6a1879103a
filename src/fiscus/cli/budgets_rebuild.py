"""`fiscus budgets rebuild`: put a lost budget store's counters back from the ledger (the operator's step under
`on_store_loss: fail_closed`; under `rebuild` the gateway does it by itself)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer


def rebuild(
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml: the store, ledger, policy.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Budget store URL (default: the config's).")] = None,
    ledger: Annotated[str | None, typer.Option("--ledger", help="Ledger URL (default: the config's).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (default: the config's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a line.")] = False,
) -> None:
    """When the budget store lost its state, sum the current windows' counters from the ledger and put them back;
    gateways refusing calls under fail_closed admit again within a second. The thresholds already announced in
    the current windows and this minute's throttle counters come back too. A store that is whole is left as it
    is. The store's own outbox is moved into the ledger first."""
    from fiscus.config import load_config
    from fiscus.ledger import open_ledger
    from fiscus.policy import Policy, load_policy
    from fiscus.stores import open_store
    from fiscus.stores.rebuild import rebuild_store

    cfg = load_config(config)
    policy_path = policy or cfg.policy
    loaded = load_policy(policy_path) if policy_path is not None else Policy()
    url = store or cfg.budget_store
    opened = open_store(url, guarded=True, **cfg.store.options(url))
    try:
        with open_ledger(ledger or cfg.ledger) as source:
            restored, rebuilt = rebuild_store(loaded, opened, source, now=time.time())
    finally:
        opened.close()
    spent, counters = rebuilt.spent, len(rebuilt.counters)
    fired = sum(key.startswith("f:") for key in rebuilt.marks)
    throttled = len(rebuilt.marks) - fired
    if as_json:
        print(
            json.dumps(
                {
                    "rebuilt": restored,
                    "counters": counters,
                    "spent_usd": format(spent, "f"),
                    "announced": fired,
                    "throttle_counters": throttled,
                }
            )
        )
    elif restored:
        print(
            f"rebuilt {counters} counters from the ledger (${spent} spent in the current windows; {fired} "
            f"thresholds already announced, {throttled} throttle counters); store whole"
        )
    else:
        print("the budget store is whole: nothing to rebuild")
