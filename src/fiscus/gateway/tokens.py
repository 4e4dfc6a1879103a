"""Operator tokens: the bearer tokens that open the admin API and `/metrics`, named by env var in the config.

A token is read from the environment on every check, so a rotated token takes effect without a restart, and is
compared in constant time. An unset or empty variable opens nothing: the secure default is closed.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping, Sequence


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if authorization is None or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None


def configured(names: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The tokens set in the env vars `names` (unset or empty ones left out)."""
    env = os.environ if env is None else env
    return [value for name in names if (value := env.get(name))]


def matches(presented: str | None, names: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    """Whether `presented` equals the token in any of the env vars `names`, compared in constant time (each
    configured token is compared, so the time does not say which one matched)."""
    if not presented:
        return False
    given = presented.encode()
    found = False
    for token in configured(names, env):
        found |= hmac.compare_digest(given, token.encode())
    return found
