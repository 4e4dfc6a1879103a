"""`Engine`: plan and decide for a policy, with the caches that keep both cheap on the hot path."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fiscus.attribution import Attribution
from fiscus.engine.calibration import BilledPrefixes, Calibration
from fiscus.engine.decide import decide as _decide
from fiscus.engine.decide import quiet
from fiscus.engine.decide import reasons as _reasons
from fiscus.engine.decision import Action, BudgetReason, Decision
from fiscus.engine.plan import (
    SCALE_ONE,
    Plan,
    PlanLine,
    Rates,
    Shape,
    capped,
    hold_key,
    instance_stem,
    quiet_levels,
    scope_values,
)
from fiscus.engine.ports import Counter, ReserveLine
from fiscus.engine.request import CallRequest
from fiscus.engine.windows import WindowInstance, window_instance
from fiscus.meters import Amounts, Limits
from fiscus.policy.types import Budget, Policy, Window
from fiscus.pricing.sheet import PriceSheet

SheetLookup = Callable[[str, str, bool, float], PriceSheet]  # (provider, model, batch, now) → sheet
RATE_WINDOW_SECONDS = 60
_NOTHING = Amounts()
_UNLIMITED = Limits()


_SHAPES_MAX = 65_536  # cached plan shapes (one per attribution × model in the current windows); cleared when full
_SEEN_MAX = 4_096  # attribution objects seen lately (a door building one per call churns through these)


class Engine:
    """Pure decisions for one policy. `sheets` prices a model at a moment (a `PriceCatalogue.sheet` adapter);
    sheets are cached per minute, window instances until their next boundary, and a plan's shape (lines,
    keys, rates) per (attribution, provider, model, batch, priority) for as long as all of those hold."""

    def __init__(self, policy: Policy, sheets: SheetLookup, calibration: Calibration | None = None) -> None:
        self.policy = policy
        self._lookup = sheets
        # actual / counted input per (provider, model, agent), from settled calls: the next estimates' factor
        self.calibration = calibration if calibration is not None else Calibration()
        self.prefixes = BilledPrefixes()  # what requests billed, to bound the next turn of their conversation
        self._margin = int((1 + policy.estimate_margin) * SCALE_ONE)
        self._sheets: dict[tuple[str, str, bool, int], Rates] = {}
        self._stems: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._windows: dict[Window, tuple[float, float, WindowInstance]] = {}
        self._caps: dict[tuple[str, str], Limits] = {}
        self._quiet = {budget.name: quiet_levels(budget) for budget in policy.budgets}
        self._shapes: dict[tuple[object, ...], Shape] = {}
        self._seen: dict[tuple[object, ...], tuple[Attribution, Shape]] = {}  # by id(attribution)

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
        return self._window_span(window, now)[2]

    def _window_span(self, window: Window, now: float) -> tuple[float, float, WindowInstance]:
        """The instance of a non-session window live at `now`, with the span [from, until) it is live for."""
        cached = self._windows.get(window)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached
        instance = window_instance(window, now, self.policy.timezone, session=None, session_ttl=0)
        assert instance is not None
        if instance.resets_at is not None:
            valid_from = (
                instance.resets_at - window.seconds // window.buckets
                if window.kind == "rolling"
                else instance.starts_at
            )
            cached = (valid_from or now, instance.resets_at, instance)
        else:
            cached = (float("-inf"), float("inf"), instance)
        self._windows[window] = cached
        return cached

    def plan(self, request: CallRequest, now: float) -> Plan:
        # First by the attribution object's identity (a wrapped client reuses one per client and session), which
        # spares hashing its twelve fields; then by value. The entry holds the object, so its id is not reused.
        attribution = request.attribution
        fast = (id(attribution), request.provider, request.model, request.batch, request.priority)
        seen = self._seen.get(fast)
        if seen is not None and seen[0] is attribution and seen[1].valid_from <= now < seen[1].valid_until:
            shape = seen[1]
        else:
            key = (attribution, *fast[1:])
            shape = self._shapes.get(key)
            if shape is None or not shape.valid_from <= now < shape.valid_until:
                shape = self._shape(request, now)
                if len(self._shapes) >= _SHAPES_MAX:
                    self._shapes.clear()
                self._shapes[key] = shape
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[fast] = (attribution, shape)
        lines = shape.lines
        if shape.sessions:  # a session's counters live on until `session_ttl` after its latest call
            expires = now + self.policy.session_ttl_seconds
            lines = tuple(
                _session_line(line, expires) if line.budget.window.kind == "session" else line for line in lines
            )
        rates = shape.rates
        max_tokens = request.max_tokens or self.policy.default_max_tokens
        scale = cost_scale = self._margin
        calibration = self.calibration
        if calibration.ratios:
            ratio = calibration.ratio(request.provider, request.model, attribution.agent)
            if ratio != SCALE_ONE:
                scale = ratio * scale // SCALE_ONE
        if calibration.costs:
            cost_scale = calibration.cost_ratio(request.provider, request.model, attribution.agent) * cost_scale
            cost_scale //= SCALE_ONE
        bound = request.hard_input_bound()
        if request.input_chain and self.prefixes:
            known = self.prefixes.bound(request.provider, request.model, request.input_chain)
            if known is not None and (bound is None or known < bound):
                bound = known
        return Plan(
            request,
            lines,
            now,
            rates.sheet,
            max_tokens,
            shape.keys,
            rates,
            shape,
            scale,
            bound,
            min(cost_scale, SCALE_ONE),
        )

    def _shape(self, request: CallRequest, now: float) -> Shape:
        """Lines, keys and rates for this request's shape at `now`, and the span they hold for."""
        minute = int(now // 60)
        valid_from, valid_until = minute * 60.0, (minute + 1) * 60.0  # rates are cached per minute
        sessions = False
        lines: list[PlanLine] = []
        keys: list[str] = []
        hold_keys: list[str] = []  # after every budget key: the worst-case counters, in the same order
        for budget in self.policy.budgets:
            values = scope_values(budget, request.attribution)
            if values is None:
                continue
            if budget.window.kind == "session":
                instance = self.window(budget.window, now, request.attribution.session)
                if instance is None:
                    continue
                sessions = True
            else:
                start, until, instance = self._window_span(budget.window, now)
                valid_from, valid_until = max(valid_from, start), min(valid_until, until)
            stem = self._stems.get((budget.name, values))
            if stem is None:
                if len(self._stems) > 100_000:
                    self._stems.clear()
                stem = self._stems[(budget.name, values)] = instance_stem(budget, values)
            line_keys = tuple(f"{stem}|{wid}" for wid in instance.ids)
            holds = tuple(hold_key(key) for key in line_keys)
            keys.extend(line_keys)
            hold_keys.extend(holds)
            cap = self._cap(budget, request.priority)
            lines.append(PlanLine(budget, stem, line_keys, instance, cap, values, self._quiet[budget.name], holds))
        rates = self.rates(request.provider, request.model, request.batch, now)
        return Shape(valid_from, valid_until, tuple(lines), (*keys, *hold_keys), rates, sessions)

    # -- the optimistic admission ------------------------------------------------------------------------

    def quiet_lines(self, plan: Plan) -> tuple[tuple[ReserveLine, ...], Amounts, Amounts] | None:
        """Store lines that reserve the estimate at the caller's cap (and that amount), each line limited to
        stay below its budget's first threshold and within its cap (`below_first_threshold`), and hold the hard
        worst case on the worst-case counters within the cap. If the store grants them, `decide` would have
        allowed the call unchanged: one atomic reservation is the whole decision. None when this shape was marked
        loud (or a budget has a threshold at 0): decide in full."""
        shape = plan.shape
        if shape is None or shape.loud or not shape.quiet:
            return None
        amount, held = plan.reserve_and_hold()
        parts = shape.quiet_parts
        if parts is not None:
            lines = [ReserveLine(name, keys, limits, amount, ends) for name, keys, limits, ends, _, _ in parts]
            lines += [ReserveLine(f"{name}#hold", holds, cap, held, ends) for name, _, _, ends, holds, cap in parts]
            return tuple(lines), amount, held
        lines = [  # a session line's expiry follows each call: take it from the plan
            ReserveLine(line.instance, line.keys, limits, amount, line.window.expires_at)
            for line, limits in zip(plan.lines, shape.limits, strict=True)
        ]
        lines += [
            ReserveLine(f"{line.instance}#hold", line.hold_keys, line.cap, held, line.window.expires_at)
            for line in plan.lines
        ]
        return tuple(lines), amount, held

    def quiet_decision(self, plan: Plan, reserved: Amounts, held: Amounts | None = None) -> Decision:
        """The decision a granted `quiet_lines` reservation stands for (what `decide` gives in that case)."""
        model = plan.request.model
        return Decision(
            Action.ALLOW, model, model, plan.max_tokens, (), None, False, None, (), "", (), reserved, hold=held
        )

    def mark_loud(self, plan: Plan) -> None:
        """The optimistic reservation was refused (a budget is near or past a threshold, or the cap needs
        clamping): this shape's calls decide in full until the shape is rebuilt — at its next window boundary,
        within a minute at most — so a busy budget wastes at most one store round trip a minute on it."""
        if plan.shape is not None:
            plan.shape.loud = True

    def decide(
        self, request: CallRequest, plan: Plan, counters: Mapping[str, Counter], *, draw: float = 0.0
    ) -> Decision:
        if plan.request is not request and plan.request != request:
            raise ValueError("decide() needs the plan made for this request")
        fast = quiet(self.policy, plan, counters)
        if fast is not None:
            return fast
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
        amount = decision.reserve or _NOTHING
        held = decision.hold or amount
        overridden = decision.overridden
        lines = [
            ReserveLine(
                line.instance,
                line.keys,
                _UNLIMITED if overridden and line.instance in overridden else line.cap,
                amount,
                line.window.expires_at,
            )
            for line in plan.lines
        ]
        lines += [
            ReserveLine(
                f"{line.instance}#hold",
                line.hold_keys,
                _UNLIMITED if overridden and line.instance in overridden else line.cap,
                held,
                line.window.expires_at,
            )
            for line in plan.lines
        ]
        if not decision.rate_limited:
            return tuple(lines)
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

    def reasons(self, plan: Plan, counters: Mapping[str, Counter]) -> tuple[BudgetReason, ...]:
        """Every applicable budget's utilisation and action for this plan (`Decision.reasons` keeps only those
        with something to say)."""
        return _reasons(plan, counters)

    def _cap(self, budget: Budget, priority: str) -> Limits:
        key = (budget.name, priority)
        cap = self._caps.get(key)
        if cap is None:
            share = self.policy.reserve_for_critical
            cap = capped(budget.cap, share) if priority == "background" and share else budget.cap
            self._caps[key] = cap
        return cap


def _session_line(line: PlanLine, expires_at: float) -> PlanLine:
    window = line.window
    instance = WindowInstance(window.ids, window.starts_at, None, expires_at, window.drops_at)
    return PlanLine(line.budget, line.instance, line.keys, instance, line.cap, line.values, line.quiet, line.hold_keys)
