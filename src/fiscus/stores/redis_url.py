"""A Redis URL as every Redis-backed store reads it: `redis://[user:password@]host:port/db?prefix=tenant`.

`prefix` is fiscus's own (a namespace for every key, wrapped in a Cluster hash tag); the rest of the URL is
redis-py's. Read once here so the budget store, breaker state and windows, loop state and response cache agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError


@dataclass(frozen=True, slots=True)
class RedisURL:
    client_url: str  # the URL without fiscus's own options, for redis-py
    prefix: str
    where: str  # how errors and status name the server (no credentials)


def parse_redis_url(url: str, prefix: str | None = None) -> RedisURL:
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    found = query.pop("prefix", ["fiscus"])[0]
    rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
    where = f"redis at {parsed.hostname or 'localhost'}:{parsed.port or 6379}{parsed.path or ''}"
    return RedisURL(parsed._replace(query=rest).geturl(), prefix or found, where)


def redis_client(url: str, what: str, prefix: str | None = None, **options: Any) -> tuple[redis.Redis, RedisURL]:
    """A sync client on `url`; a URL redis-py refuses is a one-line `StoreError` naming `what`."""
    parts = parse_redis_url(url, prefix)
    try:
        return redis.Redis.from_url(parts.client_url, **options), parts
    except (ValueError, RedisError) as exc:
        raise StoreError(f"{what} URL {url!r}: {exc}") from None


def hash_tag(prefix: str) -> str:
    """The prefix as a Cluster hash tag (`{p}`), so all of a namespace's keys live in one slot."""
    return "{" + prefix + "}" if "{" not in prefix else prefix
