"""Identifiers shaped like each provider's (chatcmpl-…, resp_…, msg_01…, toolu_01…)."""

from __future__ import annotations

import secrets

# URL-safe base64 with its two symbols mapped to letters: base62-looking ids at C speed.
_TO_ALPHANUMERIC = str.maketrans("-_", "xZ")


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + secrets.token_urlsafe(length)[:length].translate(_TO_ALPHANUMERIC)
