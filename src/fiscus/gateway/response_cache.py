"""The exact response cache at the gateway (`fiscus.shaping.response_cache`): a deterministic request of a task
class that opts in is looked up before admission; a hit is answered in the client's own protocol (the JSON body
or the SSE stream it got before) with `x-fiscus-cache: hit`, costs nothing and is recorded as a cache_hit
event with the cost it saved; a miss is answered by the provider and its answer kept for the next one.

A store failure never fails the call: the lookup then misses and the answer is not kept (logged, without the
key's request or the answer's text).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fiscus.attribution import Attribution
from fiscus.errors import StoreError
from fiscus.gateway.protocol import ParsedRequest, Protocol
from fiscus.gateway.relay import cost_trailer
from fiscus.gateway.responses import JSON, SSE, RawResponse
from fiscus.governor import CallRequest, Governor
from fiscus.policy.types import ResponseCacheRule
from fiscus.shaping.response_cache import MAX_ENTRY_BYTES, CachedAnswer, CacheKey, cache_key
from fiscus.stores.response_cache import ResponseCacheStore
from fiscus.usage.model import Usage

log = logging.getLogger("fiscus.gateway")
HEADER = "x-fiscus-cache"


@dataclass(frozen=True, slots=True)
class Lookup:
    key: CacheKey
    rule: ResponseCacheRule
    answer: CachedAnswer | None  # None: a miss, to be kept once answered


class GatewayResponseCache:
    def __init__(self, governor: Governor, store: ResponseCacheStore) -> None:
        self.governor, self.store = governor, store
        self.rules = governor.policy.response_cache

    async def lookup(self, protocol: Protocol, request: ParsedRequest, attribution: Attribution) -> Lookup | None:
        """The request's cache entry (or a miss to fill), or None when it is not to be cached."""
        found = cache_key(str(protocol.format), request.body, attribution, self.rules)
        if found is None:
            return None
        key, rule = found
        try:
            raw = await self.store.aget(key.namespace, key.digest)
        except StoreError as exc:
            log.warning("response cache lookup failed (%s): calling the provider", type(exc).__name__)
            return Lookup(key, rule, None)
        answer = CachedAnswer.decode(raw) if raw is not None else None
        if answer is not None and answer.stream != request.stream:
            answer = None  # cannot happen (`stream` is part of the key); never replay the wrong shape
        return Lookup(key, rule, answer)

    async def replay(
        self,
        lookup: Lookup,
        request: ParsedRequest,
        provider: str,
        attribution: Attribution,
        out: dict[str, str],
        passed: tuple[tuple[str, str], ...] = (),
    ) -> RawResponse:
        """The cached answer, recorded as a cache hit that cost nothing (`passed`: the guard refusals a key's
        override let it past, named in the ledger)."""
        answer = lookup.answer
        assert answer is not None
        call = CallRequest(
            provider=provider, model=request.model, attribution=attribution, input_tokens=0, passed=passed
        )
        event = await self.governor.arecord_cache_hit(call, answer.usage)
        out = out | {HEADER: "hit", "x-fiscus-request-id": event.id}
        if answer.stream:
            return RawResponse(answer.body + cost_trailer("0"), 200, out, media=SSE)
        return RawResponse(answer.body, 200, out | {"x-fiscus-cost-usd": "0"}, media=answer.media or JSON)

    async def keep(self, lookup: Lookup, body: bytes, media: str, usage: Usage, model: str, *, stream: bool) -> None:
        """Keep an answer the provider gave (whole, 2xx, not degraded) for the next identical request."""
        if len(body) > MAX_ENTRY_BYTES or usage.estimated:
            return
        entry = CachedAnswer(body, media, stream, usage, model)
        try:
            await self.store.aput(
                lookup.key.namespace,
                lookup.key.digest,
                entry.encode(),
                ttl_s=lookup.rule.ttl_seconds,
                max_entries=lookup.rule.max_entries,
            )
        except StoreError as exc:
            log.warning("response cache write failed (%s): the answer is not kept", type(exc).__name__)
