"""Prometheus metrics of one gateway app, in a registry of its own (several apps can share a process).

`labels()` costs a lock and a tuple build per call, so the children of the per-call metrics are cached per label
set here (label values are few: routes, statuses, actions, providers, token types).

Budget utilisation gauges are read from `Governor.status()` when `/metrics` is scraped, at most once per
`status_every_s`, so scrapes never add store round-trips to the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fiscus.alerts.breaker_signals import SIGNAL as BREAKER_SIGNAL
from fiscus.events.cost_event import CostEvent
from fiscus.policy.alerts import SIGNALS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TOKEN_TYPES = ("input", "cache_read", "cache_write", "output", "reasoning")
OTHER = "other"
_MAX_TRACKED = 10_000
_ZERO = Decimal(0)


class GatewayMetrics:
    def __init__(
        self,
        *,
        status: Callable[[], Iterable[Any]] | None = None,
        status_every_s: float = 5.0,
        breakers: Callable[[], dict[str, bool]] | None = None,
        alerts: Callable[[], dict[tuple[str, str], int]] | None = None,
        top_n: int = 20,
        store_events: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fiscus_requests", "Requests by route and HTTP status", ["route", "status"], registry=registry
        )
        self.tokens = Counter("fiscus_tokens", "Tokens by type", ["type"], registry=registry)
        self.cost = Counter("fiscus_cost_usd", "Cost of settled calls in USD", registry=registry)
        self.decisions = Counter("fiscus_decisions", "Budget decisions by action", ["action"], registry=registry)
        self.errors = Counter("fiscus_errors", "Errors by kind", ["kind"], registry=registry)
        self.store_events = Counter(
            "fiscus_budget_store_events",
            "Budget store lost its state (lost), could not be reached (down) or answered again (back), as announced",
            ["event", "policy"],
            registry=registry,
        )
        self.upstream_failures = Counter(
            "fiscus_upstream_failures",
            "Calls answered with an upstream failure, by provider and reason (timeout, connection, server_error, "
            "unavailable, overloaded, breaker_open, rate_limited, ...)",
            ["provider", "reason"],
            registry=registry,
        )
        self.retries = Counter(
            "fiscus_upstream_retries", "Upstream retries by provider", ["provider"], registry=registry
        )
        self.latency = Histogram(
            "fiscus_upstream_latency_seconds",
            "Time to the upstream's answer (first byte for streams)",
            ["provider"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.utilisation = Gauge(
            "fiscus_budget_utilisation",
            "Spent plus reserved over limit (a per-value budget: its most used instance)",
            ["budget"],
            registry=registry,
        )
        self.projected = Gauge(
            "fiscus_budget_projected_utilisation",
            "Utilisation a calendar budget reaches by its reset at the pace so far",
            ["budget"],
            registry=registry,
        )
        self.breakers = Gauge(
            "fiscus_breaker_open", "1 while a circuit breaker is open", ["breaker"], registry=registry
        )
        self.alerts = Gauge(
            "fiscus_alerts_standing",
            "Alerts of the alert table standing at the last check, by signal and level",
            ["signal", "level"],
            registry=registry,
        )
        self._alert_counts = alerts
        # the store guard's announcements by (event, policy), read on scrape (those made at start-up included)
        self._store_announced = store_events
        self._store_counted: dict[tuple[str, str], int] = {}
        # Spend per agent and per team with bounded labels: the `top_n` dearest by name, the rest as "other".
        self.cost_by = Gauge(
            "fiscus_cost_usd_by",
            f"Cost of settled calls in USD since start per agent and team (the {top_n} dearest; the rest: other)",
            ["dimension", "value"],
            registry=registry,
        )
        self._top_n = top_n
        self._spent_by: dict[str, dict[str, Decimal]] = {"agent": {}, "team": {}}
        self._children: dict[tuple[object, ...], Any] = {}
        self._token_children = [self.tokens.labels(kind) for kind in _TOKEN_TYPES]
        self._status = status
        self._breaker_states = breakers
        self._status_every_s = status_every_s
        self._status_at = 0.0

    def _child(self, metric: Any, *values: object) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*(str(v) for v in values))
        return child

    def decision(self, action: object) -> None:
        self._child(self.decisions, action).inc()

    def error(self, kind: str) -> None:
        self._child(self.errors, kind).inc()

    def upstream_failure(self, provider: str, reason: str) -> None:
        self._child(self.upstream_failures, provider, reason).inc()

    def upstream_latency(self, provider: str, seconds: float) -> None:
        self._child(self.latency, provider).observe(seconds)

    def retry(self, provider: str) -> None:
        self._child(self.retries, provider).inc()

    def breaker(self, name: str, is_open: bool) -> None:
        self.breakers.labels(name).set(1 if is_open else 0)

    def request(self, route: str, status: int) -> None:
        self._child(self.requests, route, status).inc()

    def settled(self, event: CostEvent) -> None:
        usage = event.usage
        counts = (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
        )
        for child, count in zip(self._token_children, counts, strict=True):
            if count:
                child.inc(count)
        total = event.cost.total
        if total:
            self.cost.inc(float(total))
            a = event.attribution
            for dim, value in (("agent", a.agent), ("team", a.team)):
                spent = self._spent_by[dim]
                key = value or "(none)"
                if key not in spent and len(spent) >= _MAX_TRACKED:
                    key = OTHER  # a bound on memory too, whatever the callers send
                spent[key] = spent.get(key, _ZERO) + total

    def render(self) -> bytes:
        self._refresh_budgets()
        if self._breaker_states is not None:  # in-process state: cheap enough to read on every scrape
            for name, is_open in self._breaker_states().items():
                self.breaker(name, is_open)
        self._publish_spend_by()
        if self._store_announced is not None:
            for key, count in list(self._store_announced.items()):
                if count > self._store_counted.get(key, 0):
                    self.store_events.labels(*key).inc(count - self._store_counted.get(key, 0))
                    self._store_counted[key] = count
        if self._alert_counts is not None:  # every signal and level, so a cleared alert reads 0
            counts = self._alert_counts()
            for signal in (*SIGNALS, BREAKER_SIGNAL):
                for level in ("warning", "critical"):
                    self.alerts.labels(signal, level).set(counts.get((signal, level), 0))
        return generate_latest(self.registry)

    def _publish_spend_by(self) -> None:
        self.cost_by.clear()  # who is in the top N moves: a series that left it must not linger
        for dim, spent in self._spent_by.items():
            named = sorted(((v, k) for k, v in spent.items() if k != OTHER), key=lambda p: (-p[0], p[1]))
            other = spent.get(OTHER, _ZERO) + sum((v for v, _ in named[self._top_n :]), _ZERO)
            for value, name in named[: self._top_n]:
                self.cost_by.labels(dim, name).set(float(value))
            if other:
                self.cost_by.labels(dim, OTHER).set(float(other))

    def _refresh_budgets(self) -> None:
        now = time.monotonic()
        if self._status is None or now - self._status_at < self._status_every_s:
            return
        self._status_at = now
        try:
            statuses = list(self._status())
        except Exception:
            self.error("budget_status")
            return
        # A budget with an instance per value (one per user…) reports its most used instance: what an alert on
        # the budget needs, at one series per budget however many users there are.
        used: dict[str, float] = {}
        projected: dict[str, float] = {}
        for status in statuses:
            name = getattr(status, "budget", None) or getattr(status, "name", None)
            if name is None:
                continue
            value = getattr(status, "utilisation", None)
            if value is not None:
                used[str(name)] = max(used.get(str(name), 0.0), float(value))
            pace = getattr(status, "pace", None)
            if pace is not None:
                projected[str(name)] = max(projected.get(str(name), 0.0), float(pace.projected))
        for name, value in used.items():
            self.utilisation.labels(name).set(value)
        for name, value in projected.items():
            self.projected.labels(name).set(value)
