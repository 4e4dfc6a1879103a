"""Near a limit, the provider's own count of a request's input (`fiscus.usage.exact`): for an Anthropic
Messages call to Anthropic's API, `POST /v1/messages/count_tokens` (free) with the caller's beta headers. A call
the byte bound alone would stop is then admitted on that count; without one (another provider, or the count
failed), on the byte bound as before."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from fiscus.engine.request import CallRequest
from fiscus.usage.exact import anthropic_count_body, anthropic_counted, count_bound

log = logging.getLogger("fiscus.gateway")


def countable(kinds: Mapping[str, str], provider: str, anthropic: bool) -> bool:
    """Whether a call to `provider` in this protocol can be counted by the provider (`kinds`: provider →
    its kind)."""
    return anthropic and kinds.get(provider) == "anthropic"


async def counted(
    upstream: Any, request: CallRequest, body: Mapping[str, Any], forwarded: Mapping[str, str]
) -> CallRequest:
    """`request` as the provider counts it, or as it was, no longer countable, when the count fails."""
    try:
        answer = await upstream.passthrough(
            request.provider,
            "POST",
            "/messages/count_tokens",
            orjson.dumps(anthropic_count_body(body)),
            content_type="application/json",
            headers=forwarded,
        )
        tokens = anthropic_counted(orjson.loads(answer.body)) if answer.status == 200 else None
    except Exception as exc:  # a failed count changes nothing: the byte bound stands
        log.info("fiscus: count_tokens for %s failed (%s); the byte bound stands", request.model, type(exc).__name__)
        tokens = None
    if tokens is None:
        return _uncounted(request)
    return request.counted(tokens, count_bound(tokens))


def _uncounted(request: CallRequest) -> CallRequest:
    return replace(request, countable=False)
