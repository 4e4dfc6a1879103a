"""A virtual key: what fiscus hands to an agent instead of a provider key, and whom its calls are charged to.

The secret is `fk-` + 32 URL-safe characters (24 random bytes, 192 bits). Only its SHA-256 is stored. A slow
password hash or a per-install pepper protects *guessable* secrets; a 192-bit random key cannot be guessed
or brute-forced from its hash, so plain SHA-256 loses nothing — and keeps verification to one fast hash and
an indexed lookup (per-key salts would make lookup by hash impossible).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from fiscus.attribution import Attribution
from fiscus.errors import FiscusError
from fiscus.keys.claims import NO_CLAIMS, KeyClaims

KEY_PREFIX = "fk-"
_SECRET_BYTES = 24  # -> 32 URL-safe characters
KEY_LENGTH = len(KEY_PREFIX) + 32
DISPLAY_CHARS = 8  # shown in listings: "fk-" and the first 5 characters of the secret part


class KeyNotFoundError(FiscusError):
    """No virtual key has the given id."""


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def new_key_id() -> str:
    return "vk_" + secrets.token_hex(6)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(text: str) -> bool:
    """Cheap shape check, so garbage never reaches the store."""
    return len(text) == KEY_LENGTH and text.startswith(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A stored key, without its secret. `attribution` carries the key's own dimensions (its `api_key` is this
    key's id); `claims` what its requests may claim beyond them through `x-fiscus-*` headers."""

    id: str
    key_hash: str
    prefix: str
    attribution: Attribution
    created_at: datetime
    name: str | None = None
    revoked_at: datetime | None = None
    claims: KeyClaims = NO_CLAIMS

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def __repr__(self) -> str:  # the hash is not secret, but nothing key-like belongs in logs
        return f"VirtualKey(id={self.id!r}, prefix={self.prefix!r}, revoked={self.revoked})"
