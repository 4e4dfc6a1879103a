"""What a call's task class decides on top of its budgets (`routes:` and `context:` in the policy): the model
it runs on, moved within its model's family, and the most input it sends. Pure; the governor applies it."""

from __future__ import annotations

from dataclasses import replace

from fiscus.engine.decision import Action, Decision
from fiscus.engine.request import CallRequest
from fiscus.policy.types import Policy


class TaskClassRules:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.routes, self.windows = bool(policy.routes), bool(policy.context)
        self._routed: dict[tuple[str, str], str | None] = {}  # (task class, model asked) → model routed to

    def route(self, request: CallRequest) -> CallRequest:
        """The request on the model its task class is routed to, or the request itself."""
        task_class = request.attribution.task_class
        choices = self.policy.routes.get(task_class) if task_class else None
        if not choices:
            return request
        key = (task_class, request.model)
        model = self._routed.get(key, "")
        if model == "":
            model = self._routed[key] = self.policy.ladders.routed(request.model, choices)
        return replace(request, model=model) if model else request

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
