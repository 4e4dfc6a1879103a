"""`Governor.from_config`: the store, ledger writer, policy, prices, notify channels and kept calibration a
fiscus.yaml names, assembled into one governor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fiscus.events.policy_event import PolicyEvent
from fiscus.governor.calibration_keeper import CalibrationKeeper
from fiscus.governor.priced import priced_as
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.ledger.open import default_spill_path
from fiscus.notify import Notifier
from fiscus.notify.channels import check_channels
from fiscus.policy.load import load_policy
from fiscus.policy.types import Policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from fiscus.config import FiscusConfig
    from fiscus.governor.governor import Governor


def from_config(
    cls: type[Governor], config: FiscusConfig, *, on_event: Callable[[object], None] | None = None
) -> Governor:
    """The governor a config describes; events also go to the notify channels it configures."""
    policy = load_policy(config.policy) if config.policy is not None else Policy()
    check_channels(policy, config.notify, config=config.source)
    # guarded: a store that lost its state says so (StoreLost) instead of admitting on empty counters
    store = open_store(config.budget_store, guarded=True, **config.store.options(config.budget_store))
    ledger = open_ledger(config.ledger)
    spill = default_spill_path(ledger)
    if policy.version is not None:  # the audit trail: which rules this process enforces from now on
        ledger.record_policy(PolicyEvent(policy.version, source=policy.source))
    governor = cls(
        policy=policy,
        store=store,
        catalogue=PriceCatalogue(config.pricing),
        ledger=LedgerWriter(ledger, outbox=store if store.durable else None),
        on_event=on_event,
        priced_as=priced_as(config),
        settle_journal=spill.with_name(spill.name.replace("spill.jsonl", "settle-retry")),
        on_store_loss=config.store.on_store_loss,
    )
    if config.notify.channels:
        governor.notifier = Notifier(config.notify)
        governor.add_listener(governor.notifier)
    governor.guard.start()  # a store that lost its state is rebuilt (or answered per policy) before any call
    governor.calibration_keeper = CalibrationKeeper.beside(config.budget_store, governor.engine.calibration)
    if governor.calibration_keeper is not None:
        governor.calibration_keeper.load()  # reserve as tightly as the processes before this one did
    return governor
