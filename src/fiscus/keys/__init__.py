"""Virtual keys: secrets handed to agents in place of provider keys, each tied to an attribution.

`KeyRing` creates, verifies (cached, constant-time), lists and revokes keys in a `KeyStore` (SQLite or
PostgreSQL, by URL); `resolve_claims` reads the per-request `x-fiscus-*` headers within what the key's
`KeyClaims` allow, `resolve_priority` the priority.
"""

from fiscus.keys.claims import CLAIMABLE, ClaimsError, KeyClaims, OnDisallowed
from fiscus.keys.headers import (
    HEADER_DIMENSIONS,
    DisallowedClaimError,
    InvalidHeaderError,
    Priority,
    ignored_headers,
    resolve_attribution,
    resolve_claims,
    resolve_priority,
)
from fiscus.keys.model import KEY_PREFIX, KeyNotFoundError, VirtualKey, generate_key, hash_key
from fiscus.keys.ring import KeyRing
from fiscus.keys.store import KeyStore, open_key_store

__all__ = [
    "CLAIMABLE",
    "HEADER_DIMENSIONS",
    "KEY_PREFIX",
    "ClaimsError",
    "DisallowedClaimError",
    "InvalidHeaderError",
    "KeyClaims",
    "KeyNotFoundError",
    "KeyRing",
    "KeyStore",
    "OnDisallowed",
    "Priority",
    "VirtualKey",
    "generate_key",
    "hash_key",
    "ignored_headers",
    "open_key_store",
    "resolve_attribution",
    "resolve_claims",
    "resolve_priority",
]
