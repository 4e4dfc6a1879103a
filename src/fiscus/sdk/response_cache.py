"""The exact response cache for wrapped clients (`fiscus.shaping.response_cache`, as the gateway has it): a
whole (not streamed) deterministic request of a task class that opts in is answered, the second time, with the
answer object it got before, rebuilt from the stored JSON; it costs nothing and is recorded as a cache_hit
event with the saving it made. The entries live beside the governor's budget store (the same SQLite file, Redis
server and prefix, or this process's memory), so the gateway and wrapped clients on one store share them.

Streamed calls and `with_raw_response` are not answered from the cache (there is no stream or raw HTTP
response to replay in process); they are sent as usual. A store failure is a miss, never a failed call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from fiscus.attribution import Attribution
from fiscus.errors import StoreError
from fiscus.policy.types import ResponseCacheRule
from fiscus.sdk.session import current_session
from fiscus.shaping.response_cache import MAX_ENTRY_BYTES, CachedAnswer, CacheKey, cache_key
from fiscus.stores.response_cache import ResponseCacheStore, response_cache_beside
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat

if TYPE_CHECKING:
    from fiscus.sdk.gate import Gate

log = logging.getLogger("fiscus.sdk")
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Lookup:
    key: CacheKey
    rule: ResponseCacheRule
    answer: CachedAnswer | None


def lookup(gate: Gate, fmt: WireFormat, kwargs: dict[str, Any]) -> Lookup | None:
    """The call's entry (or a miss to fill), or None when it is not to be cached."""
    policy = getattr(gate.governor, "policy", None)
    rules = policy.response_cache if policy is not None else None
    if not rules or kwargs.get("stream") or not hasattr(gate.governor, "cache_hit_steps"):
        return None
    session = current_session()
    attribution: Attribution = gate.attribution if session is None else session.attribution_for(gate.attribution)
    found = cache_key(str(fmt), kwargs, attribution, rules)
    if found is None:
        return None
    key, rule = found
    try:
        raw = _store(gate).get(key.namespace, key.digest)
    except StoreError as exc:
        log.warning("fiscus: response cache lookup failed (%s): calling the provider", type(exc).__name__)
        return Lookup(key, rule, None)
    answer = CachedAnswer.decode(raw) if raw is not None else None
    return Lookup(key, rule, answer if answer is not None and not answer.stream else None)


def replayed(fmt: WireFormat, answer: CachedAnswer) -> Any:
    """The SDK's answer object for a cached whole answer."""
    data = orjson.loads(answer.body)
    if fmt is WireFormat.OPENAI_CHAT:
        from openai.types.chat import ChatCompletion

        return ChatCompletion.model_validate(data)
    if fmt is WireFormat.OPENAI_RESPONSES:
        from openai.types.responses import Response

        return Response.model_validate(data)
    from anthropic.types import Message

    return Message.model_validate(data)


def keep(gate: Gate, found: Lookup, response: Any, usage: Usage, model: str) -> None:
    """Keep a whole answer (not degraded, its usage reported) for the next identical call."""
    dump = getattr(response, "model_dump", None)
    if dump is None or usage.estimated:
        return
    try:
        body = orjson.dumps(dump(mode="json", exclude_unset=True))
    except (TypeError, ValueError):
        return
    if len(body) > MAX_ENTRY_BYTES:
        return
    entry = CachedAnswer(body, _JSON, False, usage, model)
    try:
        _store(gate).put(
            found.key.namespace,
            found.key.digest,
            entry.encode(),
            ttl_s=found.rule.ttl_seconds,
            max_entries=found.rule.max_entries,
        )
    except StoreError as exc:
        log.warning("fiscus: response cache write failed (%s): the answer is not kept", type(exc).__name__)


def _store(gate: Gate) -> ResponseCacheStore:
    """The governor's response cache (shared by every client it governs), opened on first use."""
    governor = gate.governor
    store: ResponseCacheStore | None = getattr(governor, "response_cache", None)
    if store is None:
        store = governor.response_cache = response_cache_beside(governor.store)
    return store
