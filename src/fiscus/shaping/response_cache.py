"""The exact response cache ("the best call is no call"): a deterministic request asked again is answered with
the answer it got before, at no cost. Pure: which requests may be cached, their key, and the stored entry.

A request is cacheable when its task class opts in (`response_cache:` in the policy) and it is deterministic:
temperature 0 (or the policy's `any_temperature`), one choice. Its key is a SHA-256 of the normalised request —
wire format, model, messages, tools and every other parameter, keys sorted — and of whom it belongs to
(organisation and tenant: one tenant never gets another's answer), so the prompt itself is never stored. What
is stored, to be replayed, is the answer exactly as the client received it (a JSON body or the SSE bytes: a
stream and a whole answer are cached apart) and the usage it was billed for, from which a hit's saving is
priced. The answer may quote the prompt: it is kept in the budget store's backend only, never logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.policy.types import ResponseCacheRule
from fiscus.usage.model import Usage

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 1 << 20  # a larger answer is served but not cached
# Request fields that do not change what the model answers (who asks, how it is delivered is kept: `stream`).
_IGNORED = frozenset({"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"})


@dataclass(frozen=True, slots=True)
class CacheKey:
    namespace: str  # the task class: each has its own size bound
    digest: str  # hex SHA-256 of the normalised request and its owner


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """One stored answer: replayed byte for byte, with the usage (and model) it was billed for."""

    body: bytes
    media: str  # content type to answer with
    stream: bool
    usage: Usage
    model: str  # the model that answered it

    def encode(self) -> bytes:
        head = {"v": ENTRY_VERSION, "media": self.media, "stream": self.stream, "model": self.model}
        head["usage"] = self.usage.to_dict()
        return orjson.dumps(head) + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer | None:
        """The entry, or None for one this version cannot read (it is then treated as a miss)."""
        head_raw, sep, body = raw.partition(b"\n")
        if not sep:
            return None
        try:
            head = orjson.loads(head_raw)
            if head.get("v") != ENTRY_VERSION:
                return None
            usage = Usage.from_dict(head["usage"])
            return cls(body, str(head["media"]), bool(head["stream"]), usage, str(head["model"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidOperation):
            return None


def deterministic(body: Mapping[str, Any], rule: ResponseCacheRule) -> bool:
    """Whether the same request can be expected to get the same answer: temperature 0 (or the rule says any
    temperature will do) and a single choice."""
    n = body.get("n", 1)
    if n not in (None, 1) or body.get("logprobs") or body.get("top_logprobs"):
        return False
    if rule.any_temperature:
        return True
    temperature = body.get("temperature")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | str):
        return False
    try:
        return Decimal(str(temperature)) == 0
    except InvalidOperation:
        return False


def cache_key(
    fmt: str, body: Mapping[str, Any], attribution: Attribution, rules: Mapping[str, ResponseCacheRule]
) -> tuple[CacheKey, ResponseCacheRule] | None:
    """The request's key and its task class's rule, or None when it may not be answered from the cache."""
    task_class = attribution.task_class
    rule = rules.get(task_class) if task_class else None
    if rule is None or not deterministic(body, rule):
        return None
    normal = {k: v for k, v in body.items() if k not in _IGNORED}
    owner = {"organization": attribution.organization, "tenant": attribution.tenant}
    try:
        payload = orjson.dumps({"format": fmt, "owner": owner, "request": normal}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a body orjson cannot write back (it was read from JSON, so this should not happen)
        return None
    return CacheKey(str(task_class), hashlib.sha256(payload).hexdigest()), rule
