"""Runaway protection at the gateway: circuit breakers per agent and one global (`fiscus.guards.BreakerRegistry`)
and a loop detector per conversation, consulted before a call reaches the governor. A conversation is the
client's `x-fiscus-session` when it sends one, else the implicit one of `fiscus.guards.conversation` (key +
agent + the fingerprint of its stable prefix), so every call is checked. Agents exchanging messages under one
key are also watched together for ping-pong (A asks B, B asks A), whatever their conversations.

A gateway sees requests, not the SDK's response objects, but an agent's next request carries its previous
answer in the history: the last assistant turn's tool calls and text are what that answer was. So the loop
detector is fed once per request — `after_call` with the previous answer (and the tokens its call used),
then `before_call` with the new request — and a detection refuses the very call that would repeat the loop.

Each conversation's and each key's exchange detector lives in `fiscus.guards.loop_state.LoopStates`: in the
worker, or shared through the breaker state's backend (SQLite, Redis) so a loop spread over workers is seen
whole, and a conversation one worker stopped is refused by all.

A key's granted override lets its calls past the refusals `guards.overridable` names (`fiscus.guards.overridable`):
an open spend-rate or key breaker, a loop stop. The breaker stays open and the conversation stopped for every
other caller; what the call passed is handed to the governor (`CallRequest.passed`) so its ledger event names the
override.

Breakers trip on their own signals only: spend rate (fed by every settled call), error rate (provider-side
failures only, per provider/model; every failed call of a key, per virtual key) and loops. A budget's
exhaustion is that budget instance's refusal, decided by the engine; it opens no breaker, so user u1 of a
per-user budget is refused while u2 is served.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action, Decision
from fiscus.events.cost_event import CallStatus, CostEvent, new_event_id
from fiscus.events.guard_events import LoopDetected
from fiscus.governor import Admission, CallRequest
from fiscus.guards import BreakerRegistry, Detection, LoopConfig
from fiscus.guards.conversation import conversation_id
from fiscus.guards.loop_state import Conversation, LoopStates
from fiscus.guards.overridable import LOOP, GuardOverrides
from fiscus.guards.registry import MODEL_PREFIX
from fiscus.sdk.request_text import last_content
from fiscus.usage.wire import WireFormat

log = logging.getLogger("fiscus.gateway")
MAX_SESSIONS = 10_000  # session ids come from clients: keep the detectors of the most recent ones only
_REFUSING = (Action.PARTIAL, Action.BLOCK)


@dataclass(frozen=True, slots=True)
class GuardRefusal:
    """A call refused before admission: answer `action` (partial or block) with `message`."""

    action: Action
    message: str
    code: str  # breaker_open | loop_detected
    retry_at: datetime | None = None
    # A model's error-rate breaker: the provider is failing, so the answer is an outage (503), not a refusal.
    outage: bool = False

    @property
    def text(self) -> str:
        """The text of the partial answer."""
        return f"[fiscus] Stopped before calling a model: {self.message.rstrip('.')}. This answer is incomplete."


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What the guards say of a call: the refusal that stands (None: it may go on), and the refusals a key's
    override let it past, as (breaker scope or "loop", override id)."""

    refusal: GuardRefusal | None = None
    passed: tuple[tuple[str, str], ...] = ()


_CLEAR = GuardVerdict()


def refusal_admission(provider: str, model: str, attribution: Attribution, why: GuardRefusal) -> Admission:
    """An admission that reserved nothing, so the refusal is settled and recorded like any refused call."""
    decision = Decision(
        action=why.action,
        model=model,
        requested_model=model,
        max_tokens=0,
        retry_at=why.retry_at,
        message=why.message,
    )
    request = CallRequest(provider=provider, model=model, attribution=attribution, input_tokens=0)
    return Admission(request, decision, None, new_event_id(), datetime.now(UTC), time.perf_counter())


class GatewayGuards:
    def __init__(
        self,
        breakers: BreakerRegistry,
        loops: LoopConfig | None = None,
        *,
        on_breaker_open: Action = Action.PARTIAL,
        emit: Callable[[object], None] | None = None,
        loop_states: LoopStates | None = None,
        overridable: GuardOverrides | None = None,
    ) -> None:
        if on_breaker_open not in _REFUSING:
            raise ValueError(f"on_breaker_open must be partial or block, got {on_breaker_open}")
        self.breakers = breakers
        self.loops = loops or LoopConfig()
        self.on_breaker_open = on_breaker_open
        self.overridable = overridable or GuardOverrides()
        self._emit = emit
        # Per conversation ("s:" id) and per key ("x:" key, the exchange between its agents, for ping-pong
        # across conversations): the detectors, here or shared.
        self.loop_states = loop_states if loop_states is not None else LoopStates(self.loops)
        # (key, agent) → its latest implicit conversation, so a settled call's tokens find it
        self._implicit: OrderedDict[tuple[str | None, str | None], str] = OrderedDict()

    # -- before admission -----------------------------------------------------------------------------------

    def check(
        self,
        attribution: Attribution,
        fmt: WireFormat,
        body: Mapping[str, Any],
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> GuardRefusal | None:
        """The refusal of an open breaker covering this call (global, its agent's, its provider/model's) or
        of its session's loop detector; None when it may go on."""
        return self.check_call(attribution, fmt, body, provider=provider, model=model).refusal

    def check_call(
        self,
        attribution: Attribution,
        fmt: WireFormat,
        body: Mapping[str, Any],
        *,
        provider: str | None = None,
        model: str | None = None,
        grant: str | None = None,
    ) -> GuardVerdict:
        """`check`, for a call that may carry a key's override (`grant`, its id): the refusals `overridable`
        marks are passed, and said so, instead of answered."""
        overridable = self.overridable if grant is not None else None
        passable = overridable.breaker if overridable else None
        breaker, scopes = self.breakers.check_passing(
            attribution.agent, provider=provider, model=model, key=attribution.api_key, passable=passable
        )
        passed = tuple((scope, grant) for scope in scopes) if grant is not None else ()
        if breaker is not None:
            trip = breaker.last_trip
            why = trip.message if trip is not None else "circuit breaker open"
            retry = datetime.fromtimestamp(trip.reopens_at, UTC) if trip is not None else None
            message = f"{breaker.scope} circuit breaker is open: {why}"
            outage = breaker.scope.startswith(MODEL_PREFIX)  # a model's breaker counts provider failures only
            return GuardVerdict(GuardRefusal(self.on_breaker_open, message, "breaker_open", retry, outage=outage))
        refusal = self._check_loops_of(attribution, fmt, body)
        if refusal is not None and grant is not None and overridable is not None and overridable.loop:
            passed, refusal = (*passed, (LOOP, grant)), None
        if refusal is None and not passed:
            return _CLEAR
        return GuardVerdict(refusal, passed)

    def _check_loops_of(
        self, attribution: Attribution, fmt: WireFormat, body: Mapping[str, Any]
    ) -> GuardRefusal | None:
        if attribution.session is None and last_answer(fmt, body) is None:
            # A call with no history starts a run: identical one-shot calls are separate runs, not a loop.
            # Only the exchange between agents (a stateless A2A ping-pong) is watched.
            return self._check_exchange(attribution, fmt, body)
        session_id = self.conversation_of(attribution, body)
        if session_id is None:
            return None
        return self._check_loops(session_id, attribution, fmt, body)

    def _check_exchange(
        self, attribution: Attribution, fmt: WireFormat, body: Mapping[str, Any]
    ) -> GuardRefusal | None:
        if attribution.agent is None or not self.loops.implicit_conversations:
            return None
        content, _ = last_content(fmt, body)
        found = self._exchanged(attribution.api_key, attribution.agent, content)
        if found is None:
            return None
        return self._refuse(found, f"key:{attribution.api_key or '-'}", attribution.agent)

    def _exchanged(self, api_key: str | None, agent: str, content: str) -> Detection | None:
        return self.loop_states.run(f"x:{api_key or ''}", lambda exchange: exchange.detector.exchanged(agent, content))

    def conversation_of(self, attribution: Attribution, body: Mapping[str, Any]) -> str | None:
        """The conversation a call is checked in: its session, else the implicit one (when that is on)."""
        if attribution.session is not None:
            return attribution.session
        if not self.loops.implicit_conversations:
            return None
        found = conversation_id(attribution.api_key, attribution.agent, body)
        implicit = self._implicit
        implicit[(attribution.api_key, attribution.agent)] = found
        implicit.move_to_end((attribution.api_key, attribution.agent))
        if len(implicit) > MAX_SESSIONS:
            implicit.popitem(last=False)
        return found

    def _check_loops(
        self, session_id: str, attribution: Attribution, fmt: WireFormat, body: Mapping[str, Any]
    ) -> GuardRefusal | None:
        agent = attribution.agent
        previous = last_answer(fmt, body)
        content, tool_results = last_content(fmt, body)
        stop = self.loops.action == "stop"
        exchange = agent is not None and attribution.session is None  # watched with its key's other agents

        def step(held: list[Conversation]) -> tuple[str | None, Detection | None]:
            session = held[0]
            if session.stopped is not None:
                return session.stopped, None
            found: Detection | None = None
            if previous is not None:
                tool_calls, output = previous
                found = session.detector.after_call(tool_calls=tool_calls, output=output, tokens=session.tokens)
                session.tokens = 0
            before = session.detector.before_call(agent=agent, content=content, tool_results=tool_results)
            found = found or before
            if found is not None and stop:  # kept with the state, so every worker refuses it from now on
                session.stopped = _stop_message(found)
            if found is None and exchange:
                found = held[1].detector.exchanged(agent, content)  # type: ignore[arg-type]
            return None, found

        keys = [f"s:{session_id}", f"x:{attribution.api_key or ''}"] if exchange else [f"s:{session_id}"]
        stopped, found = self.loop_states.run_all(keys, step)  # one round trip for both
        if stopped is not None:
            return GuardRefusal(Action.PARTIAL, stopped, "loop_detected")
        if found is None:
            return None
        return self._refuse(found, session_id, agent)

    def _refuse(self, found: Detection, where: str, agent: str | None) -> GuardRefusal | None:
        action = self.loops.action
        self._announce(LoopDetected(found.kind, where, agent, action, found.message, found.evidence))
        log.warning("fiscus: loop detected in %s (%s): %s", where, found.kind, found.message)
        if action == "warn":
            return None
        message = _stop_message(found)
        if action == "stop":
            return GuardRefusal(Action.PARTIAL, message, "loop_detected")
        return GuardRefusal(Action.BLOCK, message, "loop_detected")  # raise: the client gets an error

    # -- after the governor ---------------------------------------------------------------------------------

    def settled(
        self,
        attribution: Attribution,
        event: CostEvent,
        *,
        provider_failed: bool = False,
        passed: frozenset[str] = frozenset(),
    ) -> None:
        """Feed the breakers and the session's token count. `provider_failed`: the provider failed the call (5xx,
        529, timeout, connection error), what error-rate breakers count; a 4xx the request caused is not.
        `passed`: the breaker scopes an override let the call past (it was no probe of theirs)."""
        state = self._postmortem(attribution)
        # A refusal reached no provider: it is no call of the model's or the key's error window.
        reached = event.status is CallStatus.OK or event.status is CallStatus.ERROR
        trips = self.breakers.record(
            attribution.agent,
            cost=event.cost.total,
            ok=not provider_failed,
            state=state,
            provider=event.provider if reached else None,
            model=event.requested_model if reached else None,
            key=attribution.api_key if reached else None,
            failed=event.status is CallStatus.ERROR,
            passed=passed,
        )
        for trip in trips:
            self._announce(trip)
        session_id = attribution.session or self._implicit.get((attribution.api_key, attribution.agent))
        tokens = event.usage.total_tokens
        # Shared, the tokens cost a round trip: taken only when a check reads them (no_progress_tokens).
        counted = self.loop_states.store is None or self.loops.no_progress_tokens is not None
        if session_id is not None and tokens and counted and self.loop_states.peek(f"s:{session_id}") is not None:

            def add(session: Conversation) -> None:
                session.tokens += tokens

            self.loop_states.run(f"s:{session_id}", add)

    def _postmortem(self, attribution: Attribution) -> dict[str, Any] | None:
        """The session's state for a post-mortem when a breaker trips on one of its calls; None without one."""
        session_id = attribution.session or self._implicit.get((attribution.api_key, attribution.agent))
        session = self.loop_states.peek(f"s:{session_id}") if session_id is not None else None
        if session is None:
            return None
        return {
            "session": session_id,
            "agent": attribution.agent,
            "stopped": session.stopped,
            "loops": session.detector.snapshot(),
        }

    def _announce(self, event: object) -> None:
        if self._emit is not None:
            try:
                self._emit(event)
            except Exception:  # a listener's failure must not fail the call
                log.exception("fiscus event listener failed")

    def open_breakers(self) -> dict[str, bool]:
        """Every breaker's scope → whether it is open now (for `fiscus_breaker_open`)."""
        return {snap["scope"]: snap["state"] == "open" for snap in self.breakers.snapshot()}


def _stop_message(found: Detection) -> str:
    return f"stopped by loop detection ({found.kind}): {found.message}"


# --- what the previous answer was, read from the request's history ------------------------------------------


def last_answer(fmt: WireFormat, body: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], str] | None:
    """(tool calls, text) of the last assistant turn in the request, None when it has none."""
    if fmt is WireFormat.OPENAI_RESPONSES:
        return _responses_answer(body.get("input"))
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            if fmt is WireFormat.ANTHROPIC:
                return _anthropic_turn(message.get("content"))
            return _chat_turn(message)
    return None


def _chat_turn(message: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], str]:
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            calls.append((str(function.get("name", "")), function.get("arguments")))
    return calls, _text(message.get("content"))


def _anthropic_turn(content: Any) -> tuple[list[tuple[str, Any]], str]:
    if isinstance(content, str):
        return [], content
    calls: list[tuple[str, Any]] = []
    texts: list[str] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "tool_use":
            calls.append((str(block.get("name", "")), block.get("input")))
        elif block.get("type") == "text":
            texts.append(str(block.get("text", "")))
    return calls, "\n".join(texts)


def _responses_answer(items: Any) -> tuple[list[tuple[str, Any]], str] | None:
    if not isinstance(items, list):
        return None
    calls: list[tuple[str, Any]] = []
    text = ""
    found = False
    for item in reversed(items):
        if not isinstance(item, Mapping):
            break
        kind, role = item.get("type"), item.get("role")
        if kind == "function_call_output" or (role == "user" and not found):
            continue
        if kind == "function_call":
            calls.append((str(item.get("name", "")), item.get("arguments")))
            found = True
            continue
        if role == "assistant":
            text, found = _text(item.get("content")), True
        break
    return (calls[::-1], text) if found else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""
