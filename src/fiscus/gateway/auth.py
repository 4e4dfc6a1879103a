"""Who is calling: the virtual key from the request (OpenAI's bearer token or Anthropic's `x-api-key`), and
the attribution and priority that key plus the `x-fiscus-*` headers give the call."""

from __future__ import annotations

from collections.abc import Mapping

from fiscus.attribution import Attribution
from fiscus.gateway.protocol import BadRequest
from fiscus.keys import InvalidHeaderError, VirtualKey, resolve_attribution, resolve_priority


def client_key(headers: Mapping[str, str]) -> str | None:
    """The key as either SDK sends it; lower-cased header names expected."""
    value = headers.get("authorization")
    if value is not None and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return headers.get("x-api-key") or None


def attribute(key: VirtualKey, headers: Mapping[str, str]) -> tuple[Attribution, str]:
    """(attribution, priority) of a call; a malformed `x-fiscus-*` header is the client's error (400)."""
    try:
        return resolve_attribution(key, headers), str(resolve_priority(headers))
    except InvalidHeaderError as exc:
        raise BadRequest(str(exc), code="invalid_header") from None
