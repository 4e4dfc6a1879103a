"""Process-wide defaults: one governor per config (embedded SQLite ledger + memory store unless configured)
and one breaker registry per governor, created on first use. A governor opened from a config takes its
breakers, shared breaker state, post-mortem folder and (when the file sets them) loop checks from its
`guards:` section. The breakers share their windows and trips through `guards.state`; with a memory store (no
fiscus.yaml, say) that is `breakers.db` beside the SQLite ledger, so the SDK processes of one host see one
account; `FISCUS_GUARDS_STATE=memory://` (or `guards.state: memory://`) keeps them in the process."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

from fiscus.guards.loops import LoopConfig
from fiscus.guards.overridable import GuardOverrides
from fiscus.guards.registry import BreakerRegistry
from fiscus.shaping.cache import CachePlacer

# Where wrapped clients share breaker state, over the config's `guards.state` (`memory://`: this process only).
STATE_ENV = "FISCUS_GUARDS_STATE"
_lock = threading.Lock()
_governors: dict[str, Any] = {}
_registries: dict[int, BreakerRegistry] = {}
_settings: dict[int, Any] = {}  # id(governor) → the FiscusConfig it was opened from
_overrides: dict[int, Any] = {}  # id(governor) → its config's override book
_batch_stores: dict[int, Any] = {}  # id(governor) → where its wrapped clients keep their batches


def default_governor(config: str | Path | None = None) -> Any:
    """The shared governor for `config` (a fiscus.yaml path), else `$FISCUS_CONFIG`, else the defaults."""
    from fiscus.config import load_config
    from fiscus.governor import Governor

    path = config if config is not None else os.environ.get("FISCUS_CONFIG") or None
    key = str(Path(path).resolve()) if path else ""
    with _lock:
        governor = _governors.get(key)
        if governor is None:
            settings = load_config(path)
            if settings.ledger.startswith("sqlite:///"):
                Path(settings.ledger.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            governor = _governors[key] = Governor.from_config(settings)
            _settings[id(governor)] = settings
            atexit.register(governor.close)
        return governor


def governor_from_policy(policy: Any) -> Any:
    """A private governor enforcing `policy` (a `Policy` or a policy file path), memory store, no ledger."""
    from fiscus.governor import Governor
    from fiscus.policy.load import load_policy
    from fiscus.pricing.catalogue import PriceCatalogue
    from fiscus.stores import open_store

    if isinstance(policy, str | Path):
        policy = load_policy(policy)
    return Governor(policy=policy, store=open_store("memory://"), catalogue=PriceCatalogue())


def breakers_for(governor: Any) -> BreakerRegistry:
    """The breaker registry shared by every client wrapped over `governor`."""
    with _lock:
        registry = _registries.get(id(governor))
        if registry is None:
            settings = _settings.get(id(governor))
            if settings is None:
                registry = BreakerRegistry()
            else:  # the SDK emits its trips itself: no on_event here
                guards = settings.guards
                url = os.environ.get(STATE_ENV) or guards.sdk_state_url(settings.budget_store, settings.ledger)
                if url.startswith("sqlite:///"):
                    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                guards = guards.model_copy(update={"state": url})
                registry = guards.breaker_registry(budget_store=settings.budget_store)
                atexit.register(registry.close)
            _registries[id(governor)] = registry
        return registry


def loops_for(governor: Any) -> LoopConfig | None:
    """The loop checks of the config `governor` was opened from, when that file sets `guards.loops`."""
    settings = _settings.get(id(governor))
    if settings is None or "loops" not in settings.guards.model_fields_set:
        return None
    return settings.guards.loop_config()


def overrides_for(governor: Any) -> Any | None:
    """The overrides granted on the config's `keys:` database, for a governor opened from a config."""
    from fiscus.sdk.override_grants import ConfiguredOverrides

    settings = _settings.get(id(governor))
    if settings is None:
        return None
    with _lock:
        found = _overrides.get(id(governor))
        if found is None:
            found = _overrides[id(governor)] = ConfiguredOverrides(settings.keys)
            atexit.register(found.close)
        return found


def overridable_for(governor: Any) -> GuardOverrides:
    """The guard refusals a key's override passes: the config's `guards.overridable`, as on the gateway."""
    settings = _settings.get(id(governor))
    return settings.guards.guard_overrides() if settings is not None else GuardOverrides()


def batch_store_for(governor: Any) -> Any:
    """Where wrapped clients over `governor` keep the batches they submitted until settled: the config's `keys:`
    database (tables `fiscus_sdk_batches`, `fiscus_sdk_batch_files`), so another process on the same config can
    settle them; for a governor opened from no config, a database in this process's memory."""
    from fiscus.batches.store import BatchStore

    with _lock:
        store = _batch_stores.get(id(governor))
        if store is None:
            settings = _settings.get(id(governor))
            url = settings.keys if settings is not None else "sqlite:///:memory:"
            store = _batch_stores[id(governor)] = BatchStore(url, prefix="fiscus_sdk_")
            atexit.register(store.close)
        return store


def breaker_action(governor: Any) -> str:
    """How an open breaker is answered: the config's `guards.breakers.on_open`, as on the gateway."""
    settings = _settings.get(id(governor))
    return settings.guards.breakers.on_open if settings is not None else "partial"


def open_gate(
    *,
    governor: Any | None,
    config: str | Path | None,
    policy: Any | None,
    attribution: dict[str, str | None],
    on_exhausted: str,
    priority: str,
    breakers: BreakerRegistry | None,
    loops: LoopConfig | None,
    on_warn: Any | None = None,
    cache_prompts: bool | None = None,
    overrides: Any | None = None,
) -> Any:
    """The `Gate` every door of the SDK (wrap, LangChain, Agents SDK) builds the same way: the given governor,
    else a private one from `policy`, else the process's shared one; guards and prompt-cache placement from that
    governor's config unless given."""
    from fiscus.attribution import Attribution
    from fiscus.sdk.gate import Gate

    if governor is None:
        governor = governor_from_policy(policy) if policy is not None else default_governor(config)
    from fiscus.sdk.across import install

    install(governor, _settings.get(id(governor)))  # routes out of a family: the other provider's credentials
    return Gate(
        governor,
        Attribution(**attribution),
        on_exhausted=on_exhausted,
        on_breaker_open=breaker_action(governor),
        breakers=breakers or breakers_for(governor),
        loops=loops or loops_for(governor),
        on_warn=on_warn,
        priority=priority,
        cache_placer=CachePlacer() if _caches_prompts(governor, cache_prompts) else None,
        overrides=overrides if overrides is not None else overrides_for(governor),
        overridable=overridable_for(governor),
    )


def _caches_prompts(governor: Any, asked: bool | None) -> bool:
    if asked is not None:
        return asked
    settings = _settings.get(id(governor))
    return bool(settings is not None and settings.optimise.prompt_cache)
