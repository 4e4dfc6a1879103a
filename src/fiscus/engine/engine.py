"""`Engine`: plan and decide for a policy, with the caches that keep both cheap on the hot path."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fiscus.engine.decide import decide as _decide
from fiscus.engine.decision import Decision
from fiscus.engine.plan import Plan, PlanLine, Rates, capped, instance_stem, scope_values
from fiscus.engine.request import CallRequest
from fiscus.engine.windows import WindowInstance, window_instance
from fiscus.policy.types import Budget, Policy, Window
from fiscus.pricing.sheet import PriceSheet
from fiscus.stores.base import Amounts, Counter, Limits, ReserveLine

SheetLookup = Callable[[str, str, bool, float], PriceSheet]  # (provider, model, batch, now) → sheet
RATE_WINDOW_SECONDS = 60


class Engine:
    """Pure decisions for one policy. `sheets` prices a model at a moment (a `PriceCatalogue.sheet` adapter);
    sheets are cached per minute, window instances until their next boundary."""

    def __init__(self, policy: Policy, sheets: SheetLookup) -> None:
        self.policy = policy
        self._lookup = sheets
        self._sheets: dict[tuple[str, str, bool, int], Rates] = {}
        self._stems: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._windows: dict[Window, tuple[float, float, WindowInstance]] = {}
        self._caps: dict[tuple[str, str], Limits] = {}

    def sheet(self, provider: str, model: str, batch: bool, now: float) -> PriceSheet:
        return self.rates(provider, model, batch, now).sheet

    def rates(self, provider: str, model: str, batch: bool, now: float) -> Rates:
        key = (provider, model, batch, int(now // 60))
        rates = self._sheets.get(key)
        if rates is None:
            if len(self._sheets) > 4096:
                self._sheets.clear()
            rates = self._sheets[key] = Rates.of(self._lookup(provider, model, batch, now))
        return rates

    def window(self, window: Window, now: float, session: str | None) -> WindowInstance | None:
        if window.kind == "session":
            return window_instance(
                window, now, self.policy.timezone, session=session, session_ttl=self.policy.session_ttl_seconds
            )
        cached = self._windows.get(window)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2]
        instance = window_instance(window, now, self.policy.timezone, session=None, session_ttl=0)
        assert instance is not None
        if instance.resets_at is not None:
            valid_from = (
                instance.resets_at - window.seconds // window.buckets
                if window.kind == "rolling"
                else instance.starts_at
            )
            self._windows[window] = (valid_from or now, instance.resets_at, instance)
        else:
            self._windows[window] = (float("-inf"), float("inf"), instance)
        return instance

    def plan(self, request: CallRequest, now: float) -> Plan:
        lines: list[PlanLine] = []
        keys: list[str] = []
        for budget in self.policy.budgets:
            values = scope_values(budget, request.attribution)
            if values is None:
                continue
            instance = self.window(budget.window, now, request.attribution.session)
            if instance is None:
                continue
            stem = self._stems.get((budget.name, values))
            if stem is None:
                if len(self._stems) > 100_000:
                    self._stems.clear()
                stem = self._stems[(budget.name, values)] = instance_stem(budget, values)
            line_keys = tuple(f"{stem}|{wid}" for wid in instance.ids)
            keys.extend(line_keys)
            lines.append(PlanLine(budget, stem, line_keys, instance, self._cap(budget, request.priority), values))
        rates = self.rates(request.provider, request.model, request.batch, now)
        return Plan(
            request=request,
            lines=tuple(lines),
            now=now,
            sheet=rates.sheet,
            rates=rates,
            max_tokens=request.max_tokens or self.policy.default_max_tokens,
            keys=tuple(keys),
        )

    def decide(
        self, request: CallRequest, plan: Plan, counters: Mapping[str, Counter], *, draw: float = 0.0
    ) -> Decision:
        if plan.request is not request and plan.request != request:
            raise ValueError("decide() needs the plan made for this request")
        return _decide(
            self.policy,
            plan,
            counters,
            sheet_for=lambda model: self.rates(request.provider, model, request.batch, plan.now),
            draw=draw,
        )

    def reserve_lines(self, plan: Plan, decision: Decision) -> tuple[ReserveLine, ...]:
        """The store lines for an admitted decision: every budget (an overridden one without a limit) and the
        per-minute counter of each budget whose throttle admits a rate."""
        amount = decision.reserve or Amounts()
        lines = [
            ReserveLine(
                budget=line.instance,
                keys=line.keys,
                limits=Limits() if line.instance in decision.overridden else line.cap,
                amount=amount,
                expires_at=line.window.expires_at,
            )
            for line in plan.lines
        ]
        for line in plan.lines:
            if line.instance not in decision.rate_limited:
                continue
            per_minute = min(t.per_minute for t in line.budget.thresholds if t.per_minute is not None)
            minute = int(plan.now // RATE_WINDOW_SECONDS)
            lines.append(
                ReserveLine(
                    budget=f"{line.instance}#rate",
                    keys=(f"t:{line.instance}|{minute}",),
                    limits=Limits(requests=per_minute),
                    amount=Amounts(requests=plan.request.calls),
                    expires_at=(minute + 2) * RATE_WINDOW_SECONDS,
                )
            )
        return tuple(lines)

    def _cap(self, budget: Budget, priority: str) -> Limits:
        key = (budget.name, priority)
        cap = self._caps.get(key)
        if cap is None:
            share = self.policy.reserve_for_critical
            cap = capped(budget.cap, share) if priority == "background" and share else budget.cap
            self._caps[key] = cap
        return cap
