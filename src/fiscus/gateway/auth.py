"""Who is calling: the virtual key from the request (OpenAI's bearer token or Anthropic's `x-api-key`), and
the attribution and priority that key plus the `x-fiscus-*` headers give the call, within what the key allows
(cached: an agent sends the same key and headers call after call)."""

from __future__ import annotations

from collections.abc import Mapping

from fiscus.attribution import Attribution
from fiscus.gateway.protocol import BadRequest
from fiscus.keys import DisallowedClaimError, InvalidHeaderError, VirtualKey, resolve_claims, resolve_priority

# (attribution, priority, headers dropped because the key does not allow their values)
Attributed = tuple[Attribution, str, tuple[str, ...]]


def client_key(headers: Mapping[str, str]) -> str | None:
    """The key as either SDK sends it; lower-cased header names expected."""
    value = headers.get("authorization")
    if value is not None and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return headers.get("x-api-key") or None


def attribute(key: VirtualKey, headers: Mapping[str, str]) -> Attributed:
    """(attribution, priority, ignored headers) of a call; a malformed `x-fiscus-*` header is the client's error
    (400), a value the key may not claim is refused (403) unless the key is set to ignore it."""
    try:
        attribution, ignored = resolve_claims(key, headers)
        return attribution, str(resolve_priority(headers)), ignored
    except InvalidHeaderError as exc:
        raise BadRequest(str(exc), code="invalid_header") from None
    except DisallowedClaimError as exc:
        raise BadRequest(str(exc), status=403, param=exc.header, code="attribution_not_allowed") from None


class AttributionCache:
    """`attribute` remembered per key and `x-fiscus-*` headers. An entry holds the very `VirtualKey` it was
    made from, so a key the key ring re-read (changed or revoked) misses and is resolved afresh."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[VirtualKey, Attributed]] = {}
        self._max_entries = max_entries

    def __call__(self, key: VirtualKey, headers: Mapping[str, str]) -> Attributed:
        """`attribute(key, headers)`; header names lower-cased."""
        sent = tuple(item for item in headers.items() if item[0].startswith("x-fiscus-"))
        entry = self._entries.get((key.id, sent))
        if entry is not None and entry[0] is key:
            return entry[1]
        result = attribute(key, headers)  # a bad header raises here, and is never cached
        if len(self._entries) >= self._max_entries:  # many sessions: start over rather than grow
            self._entries.clear()
        self._entries[(key.id, sent)] = (key, result)
        return result
