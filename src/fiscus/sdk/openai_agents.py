"""The OpenAI Agents SDK (`agents`): budgets per agent, two ways.

Full enforcement (every tier: downgrade, compression, output caps, partial answers) — give the SDK a governed
client; each call is attributed to the agent the client was wrapped for:

    client = fiscus.wrap(AsyncOpenAI(), agent="triage")
    agent = Agent(name="triage", model=OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client))
    # or for every agent: agents.set_default_openai_client(client)

Hooks — `Runner.run(agent, input, hooks=FiscusRunHooks(team="support"))` — attribute each call to the running
agent's `name`, admit it before the model is called and settle it from the `ModelResponse` usage. Hooks only
observe, so a call the budgets refuse raises `BudgetBlocked`/`BudgetExhausted` (the run stops); a downgrade or
compression is logged, not applied.

Both: when the agent's model calls a client wrapped over the hooks' governor, the hooks leave each call to that
client (`fiscus.sdk.claims`): it applies every tier and records the call once, with the hooks' attribution
(the running agent's name, the team…). One call is one event whatever the combination.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

try:
    from agents import Agent, ModelResponse, RunContextWrapper, RunHooks
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fiscus.sdk.openai_agents needs openai-agents: pip install 'fiscus[agents]'") from exc

from fiscus.guards.loops import LoopConfig
from fiscus.guards.registry import BreakerRegistry
from fiscus.sdk.claims import Claim
from fiscus.sdk.gate import Plan
from fiscus.sdk.observed import ObservedCalls
from fiscus.sdk.runtime import open_gate
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat


def usage_from_agents(usage: Any) -> Usage | None:
    """One model response's `agents.Usage` as fiscus `Usage` (its `input_tokens` includes cached tokens)."""
    if usage is None or not (usage.input_tokens or usage.output_tokens):
        return None
    total_in, output = usage.input_tokens or 0, usage.output_tokens or 0
    details = usage.input_tokens_details
    cached = min(getattr(details, "cached_tokens", 0) or 0, total_in)
    written = min(getattr(details, "cache_write_tokens", 0) or 0, total_in - cached)
    reasoning = getattr(usage.output_tokens_details, "reasoning_tokens", 0) or 0
    return Usage(
        input_tokens=total_in - cached - written,
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        output_tokens=output,
        reasoning_tokens=min(reasoning, output),
    )


def _model_name(agent: Agent[Any]) -> str:
    model = agent.model
    if isinstance(model, str):
        return model
    name = getattr(model, "model", None)
    if isinstance(name, str):
        return name
    from agents.models import get_default_model

    return get_default_model()


def _governor_below(agent: Agent[Any]) -> Any:
    """The governor of the `fiscus.wrap`-ped client the agent's model calls, if any: the agent's own model's
    client, else (a model named by string) the SDK's default client."""
    model = agent.model
    client = getattr(model, "_client", None) if model is not None and not isinstance(model, str) else None
    if client is None and (model is None or isinstance(model, str)):
        try:  # what `agents.set_default_openai_client` set
            from agents.models import _openai_shared

            client = _openai_shared.get_default_openai_client()
        except (ImportError, AttributeError):  # another SDK version: the hooks record the call themselves
            client = None
    gate = getattr(client, "fiscus_gate", None) if client is not None else None
    return getattr(gate, "governor", None)


def _dump(item: Any) -> Any:
    return item.model_dump(exclude_unset=True) if hasattr(item, "model_dump") else item


class FiscusRunHooks(RunHooks[Any]):
    """Run hooks that admit and settle every model call of a run, attributed to the running agent."""

    def __init__(
        self,
        *,
        team: str | None = None,
        workflow: str | None = None,
        environment: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        task_class: str | None = None,
        agent: str | None = None,
        governor: Any | None = None,
        config: str | None = None,
        policy: Any | None = None,
        on_exhausted: str = "partial",
        priority: str = "normal",
        provider: str = "openai",
        loops: LoopConfig | None = None,
        breakers: BreakerRegistry | None = None,
        key_id: str | None = None,
    ) -> None:
        """`agent` is used only when an agent has no name. A refused call raises with either `on_exhausted`;
        "raise" also carries the `fiscus.session` state on `BudgetExhausted`."""
        gate = open_gate(
            governor=governor,
            config=config,
            policy=policy,
            attribution={
                "agent": agent,
                "team": team,
                "workflow": workflow,
                "environment": environment,
                "tenant": tenant,
                "user": user,
                "task_class": task_class,
                "api_key": key_id,  # a virtual key's id: its api_key budgets and key overrides apply
            },
            on_exhausted=on_exhausted,
            priority=priority,
            breakers=breakers,
            loops=loops,
        )
        self.calls = ObservedCalls(gate, provider)
        self.governor = gate.governor
        # The SDK's hooks carry no call id: calls of one agent in one run are sequential, so a queue per
        # (run context, agent) pairs each end with its start.
        self._open: dict[tuple[int, str], deque[Plan | Claim]] = {}

    def _key(self, context: RunContextWrapper[Any], agent: Agent[Any]) -> tuple[int, str]:
        return id(context), agent.name

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[Any],
    ) -> None:
        body: dict[str, Any] = {"model": _model_name(agent), "input": [_dump(i) for i in input_items]}
        if system_prompt:
            body["instructions"] = system_prompt
        settings = agent.model_settings
        if settings is not None and settings.max_tokens:
            body["max_output_tokens"] = settings.max_tokens
        # the running agent's name; inside a `fiscus.session` its dimensions are added on top by the gate
        attribution = self.calls.gate.attribution.refine(agent=agent.name or None)
        opened: Plan | Claim
        if self.calls.governs_below(_governor_below(agent)):  # a governed client records it (`fiscus.sdk.claims`)
            opened = self.calls.defer(WireFormat.OPENAI_RESPONSES, body, attribution)
        else:
            opened = await self.calls.astart(WireFormat.OPENAI_RESPONSES, body, attribution)
        self._open.setdefault(self._key(context, agent), deque()).append(opened)

    async def on_llm_end(self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse) -> None:
        queue = self._open.get(self._key(context, agent))
        if not queue:
            return
        opened = queue.popleft()
        if not queue:
            del self._open[self._key(context, agent)]
        text, calls = _output(response)
        usage = usage_from_agents(response.usage)
        if isinstance(opened, Claim):
            await self.calls.aend_deferred(opened, usage, text=text, tool_calls=calls)
        else:
            await self.calls.aend(opened, usage, text=text, tool_calls=calls)

    async def settle_failed(self, error: BaseException) -> int:
        """Settle as errors the calls whose run failed before they ended (the SDK calls no hook on a model
        error). Call it from the `except` around `Runner.run`; returns how many were settled."""
        opened = [item for queue in self._open.values() for item in queue]
        self._open.clear()
        await asyncio.gather(
            *(
                self.calls.aend_deferred(item, None, error=error)
                if isinstance(item, Claim)
                else self.calls.aend(item, None, error=error)
                for item in opened
            )
        )
        return len(opened)

    @property
    def open_calls(self) -> int:
        return sum(len(queue) for queue in self._open.values())


def _output(response: ModelResponse) -> tuple[str, tuple[tuple[str, Any], ...]]:
    texts: list[str] = []
    calls: list[tuple[str, Any]] = []
    for item in response.output:
        kind = getattr(item, "type", None)
        if kind == "message":
            texts.extend(getattr(part, "text", "") or "" for part in item.content)
        elif kind == "function_call":
            calls.append((item.name, item.arguments))
    return "".join(texts), tuple(calls)


__all__ = ["FiscusRunHooks", "usage_from_agents"]
