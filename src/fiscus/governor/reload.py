"""Policy reload without a restart: read the policy file again, validate it, and only then let it replace the
running one. A broken file keeps the old policy; the answer and the log say why.

How a reload reaches every worker: the worker that reloads (on SIGHUP or `POST /admin/policy/reload`)
publishes the new version in the shared breaker state (`guards.state`, beside the budget store), and every
worker already reads that state at most every `guards.state_refresh_s` (`BreakerRegistry.sync`, also run on
a timer by the gateway); one that sees a version other than its own reloads the file itself. Polling the
store was chosen over signalling sibling processes because it reaches workers on other hosts too and needs
no process ids; the cost is one field in a read that happens anyway.

Each process that takes a new policy records a `PolicyEvent` (kind `reload`) in the ledger's audit chain,
as it records one at start.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiscus.errors import FiscusError
from fiscus.events.policy_event import PolicyEvent, PolicyEventKind
from fiscus.governor.task_class import TaskClassRules
from fiscus.guards.record import BreakerRecord

log = logging.getLogger("fiscus.policy")
POLICY_SCOPE = "~policy"  # the record in the breaker state holding the published policy version


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    changed: bool
    version: str | None  # the version in force after the attempt
    previous: str | None
    source: str | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "version": self.version,
            "previous": self.previous,
            "source": self.source,
            "error": self.error,
        }


class PolicyReloader:
    """Reloads `policy_path` into `governor`; `notify` (the config's notify section) checks the channels the new
    policy names. `publish` shares the version with the other workers (a `BreakerStateStore`)."""

    def __init__(self, governor: Any, policy_path: str | Path | None, *, notify: Any = None, state: Any = None):
        self.governor = governor
        self.policy_path = Path(policy_path) if policy_path is not None else None
        self.notify = notify
        self.state = state
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        return getattr(self.governor.policy, "version", None)

    def reload(self, *, why: str = "requested", publish: bool = True) -> ReloadResult:
        """Load, validate, swap; never raises for a bad file (the result says why it was kept)."""
        from fiscus.policy.load import load_policy

        with self._lock:
            previous = self.version
            source = str(self.policy_path) if self.policy_path is not None else None
            if self.policy_path is None:
                return self._refused(previous, source, "no policy file configured (set `policy:` in fiscus.yaml)")
            try:
                policy = load_policy(self.policy_path)
                if self.notify is not None:
                    from fiscus.notify.channels import check_channels

                    check_channels(policy, self.notify)
            except (FiscusError, OSError, ValueError) as exc:
                return self._refused(previous, source, str(exc))
            if policy.version == previous:
                return ReloadResult(True, False, previous, previous, source)
            self._swap(policy)
            self._record(policy)
            log.warning("fiscus: policy %s reloaded (%s): version %s → %s", source, why, previous, policy.version)
            if publish:
                self._publish(policy.version)
            return ReloadResult(True, True, policy.version, previous, source)

    def adopt(self, published: str) -> None:
        """Another worker published `published`: take it from the file when this worker runs another."""
        if published != self.version:
            result = self.reload(why="published by another worker", publish=False)
            if result.ok and result.version != published:
                log.warning(
                    "fiscus: another worker published policy %s but %s here is %s",
                    published,
                    result.source,
                    result.version,
                )

    def on_record(self, record: BreakerRecord) -> None:
        """The hook `BreakerRegistry.sync` calls with the policy record."""
        version = record.details.get("version")
        if isinstance(version, str):
            self.adopt(version)

    def _refused(self, previous: str | None, source: str | None, why: str) -> ReloadResult:
        log.error("fiscus: policy reload refused, keeping version %s: %s", previous, why)
        return ReloadResult(False, False, previous, previous, source, why)

    def _swap(self, policy: Any) -> None:
        from fiscus.engine.engine import Engine

        governor = self.governor
        # Each attribute is replaced whole: a call already admitted finishes under the rules that admitted it.
        governor.engine = Engine(policy, governor._sheet)
        governor.task_classes = TaskClassRules(policy, governor._sheet_now)
        governor._tiers = {}
        governor.policy = policy

    def _record(self, policy: Any) -> None:
        if policy.version is None:
            return
        sink = getattr(self.governor, "ledger", None)
        ledger = getattr(sink, "ledger", sink)  # the ledger behind a LedgerWriter
        if ledger is None or not hasattr(ledger, "record_policy"):
            return
        try:
            ledger.record_policy(PolicyEvent(policy.version, source=policy.source, kind=PolicyEventKind.RELOAD))
        except FiscusError as exc:
            log.error("fiscus: policy %s in force but not recorded in the ledger: %s", policy.version, exc)

    def _publish(self, version: str | None) -> None:
        if self.state is None or version is None:
            return
        record = BreakerRecord(POLICY_SCOPE, "closed", time.time(), details={"version": version})
        try:
            self.state.save(record)
        except FiscusError as exc:
            log.error("fiscus: policy %s not published to the other workers: %s", version, exc)
