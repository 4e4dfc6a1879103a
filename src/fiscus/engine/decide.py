"""`decide`: the verdict over every applicable budget. Pure: counters come in, a `Decision` goes out.

Each budget is assessed on its own (utilisation → the thresholds reached → its action), then the most
restrictive action wins. What an action does is data (`EFFECTS`), not a cascade of ifs.

Money on this path is integers: counters in nano-dollars, rates in nano-dollars per token × RATE_SCALE
(`Rates`), so clamping and reserving round exactly (up for what is reserved, down for the output that fits).
`Decimal` appears only in what a person reads: utilisations in reasons, hits and messages.

`quiet` is the common case in one integer pass — no budget has reached a threshold and the call fits in all
of them — and gives the same `Decision` the full `decide` would. `Decision.reasons` lists the budgets that
have something to say (a threshold reached, or an action other than allow); `reasons` gives every budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from fiscus.engine.decision import Action, BudgetReason, Decision, ThresholdHit
from fiscus.engine.plan import RATE_SCALE, SCALE_ONE, InputCase, Plan, PlanLine, Rates, instance_scope
from fiscus.engine.ports import Counter
from fiscus.engine.request import CallRequest
from fiscus.meters import Amounts, Limits
from fiscus.money import from_nanos
from fiscus.policy.types import Policy, Threshold


@dataclass(frozen=True, slots=True)
class Effect:
    state: str  # the budget's state while this is its action: ok → warn → degrade → throttle → exhausted
    shapes: bool  # the call goes ahead, changed
    refuses: bool  # no model is called


EFFECTS: dict[Action, Effect] = {
    Action.ALLOW: Effect("ok", shapes=False, refuses=False),
    Action.NOTIFY: Effect("ok", shapes=False, refuses=False),
    Action.WARN: Effect("warn", shapes=False, refuses=False),
    Action.DOWNGRADE: Effect("degrade", shapes=True, refuses=False),
    Action.COMPRESS: Effect("degrade", shapes=True, refuses=False),
    Action.THROTTLE: Effect("throttle", shapes=True, refuses=False),
    Action.PARTIAL: Effect("exhausted", shapes=False, refuses=True),
    Action.BLOCK: Effect("exhausted", shapes=False, refuses=True),
}
THROTTLE_RETRY_SECONDS = 60.0
_ZERO = Amounts()
_EMPTY = Counter()


@dataclass(slots=True)
class _Assessment:
    line: PlanLine
    used: Amounts
    utilisation: Decimal
    meter: str
    reached: tuple[Threshold, ...]
    action: Action = Action.ALLOW
    overridden: bool = False
    throttled_out: bool = False
    rate_limited: bool = False
    hits: list[ThresholdHit] = field(default_factory=list)
    actions: set[Action] = field(default_factory=set)  # every action in force, not only the most restrictive
    caller: tuple[tuple[str, str], ...] = ()  # the call's agent and team, for announcements
    override: str | None = None  # the override in force for this budget, if any


def decide(
    policy: Policy,
    plan: Plan,
    counters: Mapping[str, Counter],
    *,
    sheet_for: Callable[[str], Rates],
    draw: float = 0.0,
) -> Decision:
    """`draw` ∈ [0, 1) decides a fractional throttle (the governor passes a random number)."""
    request = plan.request
    caller = _caller(request)
    granted = request.overrides
    assessed = [
        _assess(line, counters, request.priority, override_for(granted, line.budget.name), draw, caller)
        for line in plan.lines
    ]
    hits = [hit for a in assessed for hit in a.hits]
    reasons = _reasons(assessed)

    refusing = [a for a in assessed if EFFECTS[a.action].refuses]
    if refusing:
        worst = max(refusing, key=lambda a: a.action.severity)
        retry = plan.now + THROTTLE_RETRY_SECONDS if worst.throttled_out else worst.line.window.resets_at
        what = "throttled" if worst.throttled_out else f"at {_pct(worst.utilisation)}"
        return _refusal(plan, worst, reasons, hits, retry, f"budget {worst.line.budget.name} {what}: {worst.action}")

    actions = {Action.ALLOW}.union(*(a.actions for a in assessed))
    model, downgraded = request.model, False
    if Action.DOWNGRADE in actions:
        lower = policy.ladders.one_down(request.model)
        if lower is not None:
            model, downgraded = lower, True
    compress_to = _compress_target(assessed, request.input_tokens)
    rates = (plan.rates or Rates.of(plan.sheet)) if model == request.model else sheet_for(model)
    tokens_in = request.input_tokens if compress_to is None else compress_to

    max_tokens = plan.max_tokens
    floor_tokens = min(policy.min_output_tokens, plan.max_tokens)
    fallback = None if downgraded else policy.ladders.one_down(request.model)
    # Whether an exact count of the input could let the call run as asked: the hard bound, not the estimate,
    # is what does not fit on the requested model (judged before any downgrade).
    countable = request.countable and not request.input_exact and not downgraded and compress_to is None
    count_helps = False
    restart = True
    while restart:
        restart = False
        for a in assessed:
            if a.overridden:
                continue
            fit = _line_fit(plan, a.line, a.used, counters, rates, tokens_in)
            if countable and fit < floor_tokens and model == request.model:
                count_helps = count_helps or _estimate_fits(plan, a.line, a.used, rates, floor_tokens, policy)
            if fit >= floor_tokens:
                max_tokens = min(max_tokens, fit)
                continue
            budget = a.line.budget
            if budget.exhausted_override and a.override is not None:
                a.overridden = True
                continue
            if count_helps:
                return _count_first(plan, _reasons(assessed))
            if fallback is not None:
                # The call does not fit at its model: one tier down may, before answering partially (never two).
                model, downgraded, fallback = fallback, True, None
                rates = sheet_for(model)
                actions.add(Action.DOWNGRADE)
                a.actions.add(Action.DOWNGRADE)
                if EFFECTS[a.action].state == "ok" or a.action is Action.WARN:
                    a.action = Action.DOWNGRADE
                max_tokens = plan.max_tokens
                restart = True
                break
            a.action = budget.exhausted
            need = plan.hold(rates, max_tokens=floor_tokens)
            retry = _fits_again_at(a, counters, need)
            left = from_nanos(max(0, (a.line.cap.nanos or 0) - a.used.nanos))
            task = f"a task of {request.calls} calls" if request.calls > 1 else "this call"
            message = (
                f"budget {budget.name} cannot fit {task}: needs ${from_nanos(need.nanos)} at least, ${left} left"
                if a.line.cap.nanos is not None
                else f"budget {budget.name} cannot fit {task}: its token or request limit is reached"
            )
            a.hits.append(_hit(a, "exhausted", None, a.action))
            return _refusal(plan, a, _reasons(assessed), [*hits, a.hits[-1]], retry, message)

    primary = max(actions, key=lambda action: action.severity)
    extras = tuple(sorted((x for x in actions if EFFECTS[x].shapes and x is not primary), key=lambda x: x.severity))
    channels = tuple(dict.fromkeys(t.channel for a in assessed for t in a.reached if t.channel))
    notes = [
        f"{a.line.budget.name} at {_pct(a.utilisation)}: {a.action}" for a in assessed if a.action is not Action.ALLOW
    ]
    if downgraded:
        notes.append(f"model {request.model} → {model}")
    if max_tokens < plan.max_tokens:
        notes.append(f"max_tokens clamped {plan.max_tokens} → {max_tokens}")
    return Decision(
        action=primary,
        model=model,
        requested_model=request.model,
        max_tokens=max_tokens,
        reasons=reasons,
        compress_to_tokens=compress_to,
        downgraded=downgraded,
        notify_channels=channels,
        message="; ".join(notes),
        extra_actions=extras,
        reserve=plan.worst_case(rates, input_tokens=tokens_in, max_tokens=max_tokens),
        hold=plan.hold(rates, max_tokens=max_tokens),
        hits=tuple(hits),
        overridden=tuple(a.line.instance for a in assessed if a.overridden),
        override_ids=tuple(dict.fromkeys(a.override for a in assessed if a.overridden and a.override)),
        rate_limited=tuple(a.line.instance for a in assessed if a.rate_limited),
        degraded=downgraded or compress_to is not None,
    )


def quiet(policy: Policy, plan: Plan, counters: Mapping[str, Counter]) -> Decision | None:
    """The decision when no budget has reached a threshold and the call fits in every one (the same `Decision`
    `decide` gives then); None when anything needs the full assessment."""
    request = plan.request
    rates = plan.rates or Rates.of(plan.sheet)
    max_tokens = asked = plan.max_tokens
    floor_tokens = min(policy.min_output_tokens, asked)
    estimate, hard = plan.estimate_case(rates), plan.hard_case(rates)
    for line in plan.lines:
        n, t, r = _use(line.keys, counters)
        qn, qt, qr = line.quiet
        if n >= qn or t >= qt or r >= qr:
            return None
        fit = _max_output(line.cap, n, t, r, rates, request.calls, estimate)
        if fit >= floor_tokens:
            hn, ht, hr = _use(line.hold_keys, counters)
            fit = min(fit, _max_output(line.cap, hn, ht, hr, rates, request.calls, hard))
        if fit < floor_tokens:
            return None
        if fit < max_tokens:
            max_tokens = fit
    return Decision(
        action=Action.ALLOW,
        model=request.model,
        requested_model=request.model,
        max_tokens=max_tokens,
        message=f"max_tokens clamped {asked} → {max_tokens}" if max_tokens < asked else "",
        reserve=plan.worst_case(rates, max_tokens=max_tokens),
        hold=plan.hold(rates, max_tokens=max_tokens),
    )


def _use(keys: tuple[str, ...], counters: Mapping[str, Counter]) -> tuple[int, int, int]:
    """Spent + reserved over `keys`, per meter."""
    n = t = r = 0
    for key in keys:
        counter = counters.get(key)
        if counter is not None:
            spent, held = counter.spent, counter.reserved
            n += spent.nanos + held.nanos
            t += spent.tokens + held.tokens
            r += spent.requests + held.requests
    return n, t, r


def _line_fit(
    plan: Plan, line: PlanLine, used: Amounts, counters: Mapping[str, Counter], rates: Rates, tokens_in: int
) -> int:
    """The largest output cap that fits `line` twice over: the estimate beside what its budget holds, and the
    hard worst case beside what its worst-case counters hold (every call in flight at its own worst case)."""
    calls = plan.request.calls
    fit = _max_output(
        line.cap, used.nanos, used.tokens, used.requests, rates, calls, plan.estimate_case(rates, tokens_in)
    )
    if not line.hold_keys:
        return fit
    hn, ht, hr = _use(line.hold_keys, counters)
    return min(fit, _max_output(line.cap, hn, ht, hr, rates, calls, plan.hard_case(rates)))


def _estimate_fits(plan: Plan, line: PlanLine, used: Amounts, rates: Rates, floor_tokens: int, policy: Policy) -> bool:
    """Whether the call fits `line` with at least `floor_tokens` of output if its input is the calibrated
    estimate without the policy's margin: then an exact count may well let it run."""
    margin = int((1 + policy.estimate_margin) * SCALE_ONE)  # as the engine scales the plan
    case = plan.estimate_case(rates, scale=plan.scale * SCALE_ONE // margin)
    return (
        _max_output(line.cap, used.nanos, used.tokens, used.requests, rates, plan.request.calls, case) >= floor_tokens
    )


def _count_first(plan: Plan, reasons: tuple[BudgetReason, ...]) -> Decision:
    """No verdict yet: the door is to count the input exactly and ask again. Nothing is reserved, announced or
    refused on a bound that an exact count may shrink."""
    request = plan.request
    return Decision(  # refuses if a door ignored it: no model is called on what was not reserved
        action=Action.BLOCK,
        model=request.model,
        requested_model=request.model,
        max_tokens=0,
        reasons=reasons,
        message="the input's byte bound does not fit: count it exactly, then ask again",
        count_helps=True,
    )


def reasons(plan: Plan, counters: Mapping[str, Counter]) -> tuple[BudgetReason, ...]:
    """Every applicable budget's reason, reached a threshold or not (for status views and headers)."""
    request = plan.request
    return tuple(
        _reason(_assess(line, counters, request.priority, override_for(request.overrides, line.budget.name), 0.0))
        for line in plan.lines
    )


def override_for(granted: tuple[tuple[str, str], ...], budget: str) -> str | None:
    """The id of the override in force for `budget` (one for it by name first, then one for every budget)."""
    if not granted:
        return None
    for name, override_id in granted:
        if name == budget:
            return override_id
    for name, override_id in granted:
        if name == "*":
            return override_id
    return None


def _caller(request: CallRequest) -> tuple[tuple[str, str], ...]:
    who = request.attribution
    return tuple((dim, value) for dim, value in (("agent", who.agent), ("team", who.team)) if value)


def _assess(
    line: PlanLine,
    counters: Mapping[str, Counter],
    priority: str,
    override: str | None,
    draw: float,
    caller: tuple[tuple[str, str], ...] = (),
) -> _Assessment:
    n = t = r = 0
    for key in line.keys:
        used = counters.get(key, _EMPTY).used
        n += used.nanos
        t += used.tokens
        r += used.requests
    used = Amounts(n, t, r)
    utilisation, meter = utilisation_of(used, line.budget.limits)
    reached = tuple(th for th in line.budget.thresholds if th.at <= utilisation)
    a = _Assessment(line, used, utilisation, meter, reached, caller=caller, override=override)
    for th in reached:
        action = th.action
        if action is Action.BLOCK and th.override and override is not None:
            a.overridden = True
            continue
        if action is Action.THROTTLE:
            if priority == "critical":  # throttling sheds load; critical work is never shed
                continue
            if th.per_minute is not None:
                a.rate_limited = True
            if th.fraction is not None and Decimal(str(draw)) >= th.fraction:
                a.throttled_out = True
                action = Action.BLOCK
        a.hits.append(_hit(a, th.tag, th.at, th.action, th.channel))
        a.actions.add(action)
        if action.severity > a.action.severity:
            a.action = action
    return a


def utilisation_of(used: Amounts, limits: Limits) -> tuple[Decimal, str]:
    """The highest share used over the limited meters, and which meter it is."""
    best, meter = Decimal(0), "usd"
    for name, value, limit in (
        ("usd", used.nanos, limits.nanos),
        ("tokens", used.tokens, limits.tokens),
        ("requests", used.requests, limits.requests),
    ):
        if limit:
            share = Decimal(value) / Decimal(limit)
            if share > best:
                best, meter = share, name
    return best, meter


def _max_output(cap: Limits, n: int, t: int, r: int, rates: Rates, calls: int, case: InputCase) -> int:
    """The largest output cap per call that keeps all `calls` of input `case` within `cap`, given use `n`
    nano-dollars, `t` tokens, `r` requests (negative: not even the input fits). Integer maths, rounded down."""
    best = 1 << 62
    if cap.requests is not None and r + calls > cap.requests:
        return -1
    if cap.tokens is not None:
        best = min(best, (cap.tokens - t) // calls - case.tokens)
    if cap.nanos is not None:
        # (left / calls - input cost) / output price, in nano-dollars × RATE_SCALE, floored
        cost, per_token = case.cost(rates)
        left = (cap.nanos - n) * RATE_SCALE - calls * cost
        if per_token > 0:
            best = min(best, left // (calls * per_token))
        elif left < 0:
            return -1
    return best


def _compress_target(assessed: list[_Assessment], input_tokens: int) -> int | None:
    targets = [
        th.to_tokens if th.to_tokens is not None else int(input_tokens * (th.fraction or 1))
        for a in assessed
        for th in a.reached
        if th.action is Action.COMPRESS
    ]
    target = min(targets, default=None)
    return target if target is not None and target < input_tokens else None


def _fits_again_at(a: _Assessment, counters: Mapping[str, Counter], need: Amounts) -> float | None:
    """When the window frees enough for `need`: the reset, or for a rolling window the moment enough old
    buckets have dropped out (reservations in them may free it sooner; this is the bound from spend)."""
    window, cap = a.line.window, a.line.cap
    if window.drops_at:
        freed = _ZERO
        for key, drop in reversed(tuple(zip(a.line.keys, window.drops_at, strict=True))):
            freed = freed + counters.get(key, _EMPTY).used
            if cap.admits(a.used - freed, need):
                return drop
        return window.resets_at
    return window.resets_at


def _refusal(
    plan: Plan,
    a: _Assessment,
    reasons: tuple[BudgetReason, ...],
    hits: list[ThresholdHit],
    retry: float | None,
    message: str,
) -> Decision:
    request = plan.request
    return Decision(
        action=a.action,
        model=request.model,
        requested_model=request.model,
        max_tokens=0,
        reasons=reasons,
        retry_at=datetime.fromtimestamp(retry, UTC) if retry is not None else None,
        message=message,
        hits=tuple(hits),
        exhausted_budget=a.line.budget.name,
    )


def _hit(a: _Assessment, tag: str, at: Decimal | None, action: Action, channel: str | None = None) -> ThresholdHit:
    window = a.line.window
    budget = a.line.budget
    return ThresholdHit(
        budget=budget.name,
        instance=a.line.instance,
        window_id=_announce_period(a.line),
        tag=tag,
        at=at,
        action=action,
        utilisation=a.utilisation,
        channel=channel,
        resets_at=window.resets_at_utc,
        expires_at=window.expires_at,
        scope=instance_scope(budget, a.line.values),
        used=a.used,
        limits=budget.limits,
        caller=a.caller,
    )


def _announce_period(line: PlanLine) -> str:
    """Calendar, session and prepaid windows announce once per instance; a rolling window has no instances,
    so it announces once per period of its own length (a bucket index divided by the bucket count)."""
    window = line.budget.window
    if window.kind != "rolling":
        return line.window.ids[0]
    prefix, bucket = line.window.ids[0].split(":")
    return f"{prefix}p:{int(bucket) // window.buckets}"


def _reasons(assessed: list[_Assessment]) -> tuple[BudgetReason, ...]:
    """The budgets that have something to say: a threshold reached or an action other than allow."""
    return tuple(_reason(a) for a in assessed if a.reached or a.action is not Action.ALLOW or a.overridden)


def _reason(a: _Assessment) -> BudgetReason:
    window = a.line.window
    label = a.line.budget.name + "".join(f" {dim}={value}" for dim, value in a.line.values)
    limit = {
        "usd": a.line.budget.limits.nanos,
        "tokens": a.line.budget.limits.tokens,
        "requests": a.line.budget.limits.requests,
    }[a.meter]
    shown = f"${from_nanos(limit)}" if a.meter == "usd" and limit else f"{limit} {a.meter}"
    return BudgetReason(
        budget=label,
        utilisation=a.utilisation.quantize(Decimal("0.0001")),
        threshold=a.reached[-1].at if a.reached else None,
        action=a.action,
        meter=a.meter,
        resets_at=window.resets_at_utc,
        message=f"{label}: {_pct(a.utilisation)} of {shown}" + ("" if a.action is Action.ALLOW else f" → {a.action}"),
    )


def _pct(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.1'))}%"
