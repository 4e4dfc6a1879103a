"""Virtual keys: secrets handed to agents in place of provider keys, each tied to an attribution.

`KeyRing` creates, verifies (cached, constant-time), lists and revokes keys in a `KeyStore` (SQLite or
PostgreSQL, by URL); `resolve_attribution` and `resolve_priority` read the per-request `x-fiscus-*` headers.
"""

from fiscus.keys.headers import (
    HEADER_DIMENSIONS,
    LOCKED_HEADERS,
    InvalidHeaderError,
    Priority,
    ignored_headers,
    resolve_attribution,
    resolve_priority,
)
from fiscus.keys.model import KEY_PREFIX, KeyNotFoundError, VirtualKey, generate_key, hash_key
from fiscus.keys.ring import KeyRing
from fiscus.keys.store import KeyStore, open_key_store

__all__ = [
    "HEADER_DIMENSIONS",
    "KEY_PREFIX",
    "LOCKED_HEADERS",
    "InvalidHeaderError",
    "KeyNotFoundError",
    "KeyRing",
    "KeyStore",
    "Priority",
    "VirtualKey",
    "generate_key",
    "hash_key",
    "ignored_headers",
    "open_key_store",
    "resolve_attribution",
    "resolve_priority",
]
