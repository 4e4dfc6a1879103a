"""LangChain / LangGraph: `FiscusCallbackHandler` attributes and bounds every chat model and LLM call of a run.

    handler = FiscusCallbackHandler(agent="researcher", team="growth")
    graph.invoke(inputs, config={"callbacks": [handler]})

Each model call is admitted before it starts (input tokens counted from the messages, the model read from the
invocation parameters) and settled from the usage LangChain reports. A call the budgets refuse raises
`BudgetBlocked` or `BudgetExhausted`, which stops the run. A callback only observes, so a downgrade, compression
or output cap is not applied; for those, govern the model's own client instead: `govern_chat_model(ChatOpenAI(...),
agent=...)`. With both on one governor, the handler leaves each call to the governed client, which records it
once with the handler's attribution (run tree, agent); see `fiscus.sdk.claims`.

Run tree: the root run of an invocation is the session; a chain run whose metadata names `fiscus_agent` (e.g.
a LangGraph node or subgraph, `config={"metadata": {"fiscus_agent": "critic"}}`) starts a child session whose
calls carry that agent and its parent's session as `parent_session`. Inside a `fiscus.session(...)` block the
session's attribution wins.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import BaseMessage, convert_to_openai_messages
    from langchain_core.outputs import ChatGeneration, LLMResult
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fiscus.sdk.langchain needs langchain-core: pip install 'fiscus[langchain]'") from exc

from fiscus.attribution import Attribution
from fiscus.guards.loops import LoopConfig
from fiscus.guards.registry import BreakerRegistry
from fiscus.sdk.claims import GOVERNED_METADATA, Claim, governor_token
from fiscus.sdk.gate import Plan
from fiscus.sdk.observed import ObservedCalls
from fiscus.sdk.runtime import open_gate
from fiscus.sdk.session import current_session
from fiscus.usage import openai_chat
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat

# LangChain's `ls_provider` names → fiscus providers (anything else passes through as named).
_PROVIDERS = {"openai": "openai", "azure": "openai", "anthropic": "anthropic", "google_genai": "google"}
_MAX_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample")


def usage_from_metadata(metadata: Mapping[str, Any]) -> Usage:
    """LangChain's `UsageMetadata` as fiscus `Usage`. LangChain's `input_tokens` includes cache reads and
    writes; fiscus counts them apart. Anthropic's 1-hour cache writes are split out when reported."""
    total_in = int(metadata.get("input_tokens") or 0)
    output = int(metadata.get("output_tokens") or 0)
    details = metadata.get("input_token_details") or {}
    read = int(details.get("cache_read") or 0)
    write = int(details.get("cache_creation") or 0)
    write_1h = min(int(details.get("ephemeral_1h_input_tokens") or 0), write)
    read = min(read, total_in)
    write = min(write, total_in - read)
    write_1h = min(write_1h, write)
    reasoning = int((metadata.get("output_token_details") or {}).get("reasoning") or 0)
    return Usage(
        input_tokens=total_in - read - write,
        cache_read_tokens=read,
        cache_write_5m_tokens=write - write_1h,
        cache_write_1h_tokens=write_1h,
        output_tokens=output,
        reasoning_tokens=min(reasoning, output),
    )


def _usage(response: LLMResult) -> Usage | None:
    """Usage of one model run: the messages' `usage_metadata`, else the provider's `token_usage` (OpenAI shape)."""
    found: Usage | None = None
    for generations in response.generations:
        for generation in generations:
            metadata = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if metadata:
                usage = usage_from_metadata(metadata)
                found = usage if found is None else found + usage
    if found is not None:
        return found
    token_usage = (response.llm_output or {}).get("token_usage") or (response.llm_output or {}).get("usage")
    if isinstance(token_usage, Mapping) and "prompt_tokens" in token_usage:
        return openai_chat.usage_from_fields(dict(token_usage))
    return None


def _output(response: LLMResult) -> tuple[str, tuple[tuple[str, Any], ...], str | None]:
    """The answer's text, its tool calls and the model the provider says served it."""
    texts: list[str] = []
    calls: list[tuple[str, Any]] = []
    served: str | None = None
    for generations in response.generations:
        for generation in generations:
            texts.append(generation.text or "")
            if isinstance(generation, ChatGeneration):
                message = generation.message
                calls.extend((c.get("name", ""), c.get("args")) for c in getattr(message, "tool_calls", None) or ())
                meta = message.response_metadata or {}
                served = served or meta.get("model_name") or meta.get("model")
    served = served or (response.llm_output or {}).get("model_name")
    return "".join(texts), tuple(calls), served


class FiscusCallbackHandler(BaseCallbackHandler):
    """Attributes and enforces budgets on every model call of the runs it is attached to (sync and async)."""

    raise_error = True  # LangChain swallows a handler's exceptions unless asked: refusals must stop the run
    run_inline = True  # in async runs too, so the caller's `fiscus.session` context is seen

    def __init__(
        self,
        *,
        agent: str | None = None,
        team: str | None = None,
        workflow: str | None = None,
        environment: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        task_class: str | None = None,
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
        """`on_exhausted`: "raise" carries the session state on `BudgetExhausted` (as for `fiscus.wrap`); with
        either value a refused call raises, since a callback cannot hand back a partial answer. `provider` is
        used when LangChain does not name one (`ls_provider`)."""
        super().__init__()
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
        self._plans: dict[UUID, Plan | Claim] = {}
        self._token = governor_token(gate.governor)
        self._runs: dict[UUID, tuple[UUID | None, str | None]] = {}  # chain run → (parent run, its fiscus_agent)
        self._lock = threading.Lock()

    # --- the run tree ----------------------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._runs[run_id] = (parent_run_id, (metadata or {}).get("fiscus_agent"))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def _attribution(self, run_id: UUID, parent_run_id: UUID | None, metadata: Mapping[str, Any]) -> Attribution:
        base = self.calls.gate.attribution
        agent = metadata.get("fiscus_agent")
        if current_session() is not None:  # the fiscus session's attribution wins
            return base.refine(agent=agent)
        # Walk up: the nearest run naming an agent is this call's session, the next one up its parent session.
        sessions: list[tuple[UUID, str | None]] = []
        node, root = parent_run_id, run_id
        with self._lock:
            while node is not None and node in self._runs:
                parent, named = self._runs[node]
                if named is not None:
                    sessions.append((node, named))
                root, node = node, parent
        if node is not None:
            root = node  # a parent this handler did not see start (attached below the root)
        if not sessions or sessions[-1][0] != root:
            sessions.append((root, None))
        agent = agent or sessions[0][1] or base.agent
        parent = str(sessions[1][0]) if len(sessions) > 1 else None
        return base.refine(agent=agent, session=str(sessions[0][0]), parent_session=parent)

    # --- model calls -----------------------------------------------------------------------------------------

    def _start(
        self,
        serialized: Mapping[str, Any] | None,
        messages: list[dict[str, Any]],
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any],
    ) -> None:
        metadata = metadata or {}
        init = (serialized or {}).get("kwargs") or {}
        model = (
            params.get("model")
            or params.get("model_name")
            or metadata.get("ls_model_name")
            or init.get("model")
            or init.get("model_name")
            or ""
        )
        body: dict[str, Any] = {"model": str(model), "messages": messages}
        if params.get("tools"):
            body["tools"] = params["tools"]
        cap = next((params[k] for k in _MAX_KEYS if params.get(k)), None) or metadata.get("ls_max_tokens")
        if cap:
            body["max_tokens"] = int(cap)
        named = metadata.get("ls_provider")
        provider = _PROVIDERS.get(named, named) if named else None
        attribution = self._attribution(run_id, parent_run_id, metadata)
        opened: Plan | Claim
        if metadata.get(GOVERNED_METADATA) == self._token:  # `govern_chat_model`'s client records it
            opened = self.calls.defer(WireFormat.OPENAI_CHAT, body, attribution, provider)
        else:
            opened = self.calls.start(WireFormat.OPENAI_CHAT, body, attribution, provider)
        with self._lock:
            self._plans[run_id] = opened

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        flat = [m for batch in messages for m in convert_to_openai_messages(batch)]
        self._start(serialized, flat, run_id, parent_run_id, metadata, invocation_params or {})

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        messages = [{"role": "user", "content": prompt} for prompt in prompts]
        self._start(serialized, messages, run_id, parent_run_id, metadata, invocation_params or {})

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            plan = self._plans.pop(run_id, None)
        if plan is None:
            return
        text, calls, served = _output(response)
        if isinstance(plan, Claim):
            self.calls.end_deferred(plan, _usage(response), text=text, tool_calls=calls)
            return
        self.calls.end(plan, _usage(response), text=text, tool_calls=calls, model=_same_model(plan, served))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            plan = self._plans.pop(run_id, None)
        if isinstance(plan, Claim):
            self.calls.end_deferred(plan, None, error=error)
        elif plan is not None:
            self.calls.end(plan, None, error=error)

    @property
    def open_calls(self) -> int:
        """Calls admitted and not yet settled (for tests and shutdown checks)."""
        return len(self._plans)


def _same_model(plan: Plan, served: str | None) -> str | None:
    """The served model when the provider names a dated snapshot of the requested one, else the requested."""
    requested = plan.request.model if plan.request else None
    if served and requested and served.startswith(requested):
        return served
    return requested or served


def govern_chat_model(model: Any, **wrap_kwargs: Any) -> Any:
    """Replace a `langchain_openai.ChatOpenAI`'s clients by governed ones (`fiscus.wrap(..., **wrap_kwargs)`),
    so downgrade, compression and output caps apply too. Returns the same model object.

    Chat Completions calls are governed (plain, streamed and the raw-response path ChatOpenAI uses); a call
    the budgets refuse gets the partial answer as an `AIMessage` (or raises, for `on_exhausted="raise"` and a
    `block` policy). Structured output through `response_format` (the SDK's beta `parse`/`stream`) and the
    Responses API path are passed through ungoverned by this helper (a `FiscusCallbackHandler` on the same
    governor still records them)."""
    from fiscus.sdk.wrap import wrap

    root, aroot = getattr(model, "root_client", None), getattr(model, "root_async_client", None)
    if root is None and aroot is None:
        from fiscus.errors import FiscusError

        raise FiscusError(f"fiscus: govern_chat_model supports ChatOpenAI-style models, got {type(model).__name__}")
    governor = None
    if root is not None:
        governed = wrap(root, **wrap_kwargs)
        model.root_client, model.client = governed, governed.chat.completions
        governor = governed.fiscus_gate.governor
    if aroot is not None:
        governed = wrap(aroot, **wrap_kwargs)
        model.root_async_client, model.async_client = governed, governed.chat.completions
        governor = governed.fiscus_gate.governor
    # A `FiscusCallbackHandler` on the same governor sees this and leaves the calls to these clients.
    model.metadata = {**(model.metadata or {}), GOVERNED_METADATA: governor_token(governor)}
    return model


__all__: Sequence[str] = ["FiscusCallbackHandler", "govern_chat_model", "usage_from_metadata"]
