"""Process-wide defaults: one governor per config (embedded SQLite ledger + memory store unless configured)
and one breaker registry per governor, created on first use."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

from fiscus.guards.registry import BreakerRegistry

_lock = threading.Lock()
_governors: dict[str, Any] = {}
_registries: dict[int, BreakerRegistry] = {}


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
            registry = _registries[id(governor)] = BreakerRegistry()  # the SDK emits its trips itself
        return registry
