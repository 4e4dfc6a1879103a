"""What a call's task class decides on top of its budgets (`routes:` and `context:` in the policy): the model
it runs on, moved within its model's family (or out of it, onto another provider, where the door translates
between wire formats), and the most input it sends. No I/O; the governor applies it.

Routing weighs the prompt cache it would break. A provider caches a prompt per model, so a session moved to
another model pays its whole context again at the full input price. When a route would move a call off the
model its session last ran on, the call is priced both ways — staying (the previous call's input read from the
cache, the rest at the input price) and moving (all of it at the new model's input price), the same output on
each — and the session stays unless moving is cheaper.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace

from fiscus.engine.decision import Action, Decision
from fiscus.engine.request import CallRequest
from fiscus.errors import PricingError
from fiscus.policy.types import Policy
from fiscus.pricing.sheet import PriceSheet
from fiscus.shaping.cache_minimums import min_cacheable_tokens
from fiscus.usage.model import Usage

Sheets = Callable[[str, str], PriceSheet]  # (provider, model) → its prices now
EXPECTED_OUTPUT_TOKENS = 1000  # the output both ways are priced with, at most (the same on each side)
MAX_SESSIONS = 50_000


class TaskClassRules:
    def __init__(self, policy: Policy, sheets: Sheets | None = None) -> None:
        self.policy = policy
        self.routes, self.windows = bool(policy.routes or policy.cross_routes), bool(policy.context)
        # The provider that serves a model (any wire format): set by a door that translates between formats (the
        # gateway); without it a route out of a family is not taken (a wrapped client speaks one vendor's API).
        self.provider_of: Callable[[str], str | None] | None = None
        self._routed: dict[tuple[str, str], str | None] = {}  # (task class, model asked) → model routed to
        self._sheets = sheets
        self._sessions: OrderedDict[str, tuple[str, str, int]] = OrderedDict()  # → (provider, model, input)
        self._lock = threading.Lock()

    def ran(self, request: CallRequest, model: str) -> None:
        """Remember that `request`'s session just ran on `model` (what its provider now has cached)."""
        session = request.attribution.session
        if not session or self._sheets is None:
            return
        with self._lock:
            self._sessions[session] = (request.provider, model, request.input_tokens)
            self._sessions.move_to_end(session)
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)

    def _cache_aware(self, request: CallRequest, target: str) -> str:
        """`target`, or the model the session last ran on when staying there costs less than the cache lost."""
        session = request.attribution.session
        last = self._sessions.get(session) if session and self._sheets is not None else None
        if last is None or last[0] != request.provider or last[1] == target:
            return target
        _, model, previous = last
        cached = min(previous, request.input_tokens)
        if cached < (min_cacheable_tokens(model) or request.input_tokens + 1):
            return target  # nothing the provider would have kept
        output = min(request.max_tokens or self.policy.default_max_tokens, EXPECTED_OUTPUT_TOKENS)
        try:
            stay = self._sheets(request.provider, model).cost(  # type: ignore[misc]
                Usage(input_tokens=request.input_tokens - cached, cache_read_tokens=cached, output_tokens=output)
            )
            move = self._sheets(request.provider, target).cost(  # type: ignore[misc]
                Usage(input_tokens=request.input_tokens, output_tokens=output)
            )
        except PricingError:
            return target
        return model if stay.total < move.total else target

    def route(self, request: CallRequest) -> CallRequest:
        """The request on the model its task class is routed to, or the request itself."""
        task_class = request.attribution.task_class
        if task_class and self.provider_of is not None and task_class in self.policy.cross_routes:
            across = self._across(request, self.policy.cross_routes[task_class], self.provider_of)
            if across is not None:
                return across
        choices = self.policy.routes.get(task_class) if task_class else None
        if not choices:
            return request
        key = (task_class, request.model)
        model = self._routed.get(key, "")
        if model == "":
            model = self._routed[key] = self.policy.ladders.routed(request.model, choices)
        if not model:
            return request
        model = self._cache_aware(request, model)
        return replace(request, model=model) if model != request.model else request

    def _across(
        self, request: CallRequest, routes: Mapping[str, str], provider_of: Callable[[str], str | None]
    ) -> CallRequest | None:
        """The request moved out of its model's family, onto the model (and provider) its route names."""
        tier = self.policy.ladders.tier_of(request.model)
        target = routes.get(tier.ladder) if tier is not None else None
        provider = provider_of(target) if target is not None else None
        if target is None or provider is None:
            return None
        return replace(request, model=target, provider=provider)

    def as_asked(self, asked: CallRequest, routed: CallRequest, decision: Decision) -> Decision:
        """The decision on a request as the caller asked it: the model it asked for (before a route) and its
        task class's context window."""
        if asked is not routed:
            decision = replace(decision, requested_model=asked.model)
        if self.windows:
            decision = self._windowed(asked, decision)
        return decision

    def _windowed(self, request: CallRequest, decision: Decision) -> Decision:
        """A longer input than the task class's window is compressed to it, whatever the budgets say (a budget's
        own smaller compression target still wins)."""
        task_class = request.attribution.task_class
        window = self.policy.context.get(task_class) if task_class else None
        if window is None or request.input_tokens <= window or not decision.calls_model:
            return decision
        target = min(window, decision.compress_to_tokens or window)
        extra = decision.extra_actions
        if decision.action is not Action.COMPRESS and Action.COMPRESS not in extra:
            extra = (*extra, Action.COMPRESS)
        return replace(decision, compress_to_tokens=target, extra_actions=extra)
