"""Which configured provider serves a model name: the first provider (in config order) whose `models`
globs match and whose kind speaks the client's protocol. Exact names are looked up before globs. A route out of
a model's family (`routes: {t: [{from: gpt-4o, to: claude-haiku-4-5}]}`) goes to a provider of the other wire
format, which the upstream translates to and from."""

from __future__ import annotations

from fnmatch import fnmatchcase

from fiscus.config import ProviderConfig
from fiscus.gateway.protocol import CHAT, MESSAGES, Protocol


class Router:
    def __init__(self, providers: dict[str, ProviderConfig]) -> None:
        self._providers = providers
        self._cache: dict[tuple[str, frozenset[str]], str | None] = {}

    def route(self, model: str, protocol: Protocol) -> str | None:
        """The provider name for `model` on `protocol`, or None when no provider serves it."""
        key = (model, protocol.kinds)
        if key in self._cache:
            return self._cache[key]
        found = None
        candidates = [(n, p) for n, p in self._providers.items() if p.kind in protocol.kinds]
        for name, provider in candidates:
            if model in provider.models:
                found = name
                break
        else:
            for name, provider in candidates:
                if any(fnmatchcase(model, pattern) for pattern in provider.models):
                    found = name
                    break
        if len(self._cache) < 10_000:  # model names come from clients: keep the cache bounded
            self._cache[key] = found
        return found

    def across(self, model: str, protocol: Protocol) -> str | None:
        """The provider for `model` among those speaking the other wire format the gateway translates the
        client's into (Chat Completions ↔ Messages), or None: where a route out of a family is sent."""
        other = _COUNTERPART.get(protocol.operation)
        return self.route(model, other) if other is not None else None

    def provider_of(self, model: str) -> str | None:
        """The first provider, of any kind, serving `model` (exact names before globs)."""
        for protocol in (CHAT, MESSAGES):
            found = self.route(model, protocol)
            if found is not None:
                return found
        return None

    def models(self) -> list[tuple[str, str]]:
        """(model, provider) for every configured model name, globs included as written."""
        return [(model, name) for name, p in self._providers.items() for model in p.models]


# The protocol a request is translated into for a provider of the other format (`fiscus.providers.translate`).
_COUNTERPART = {"chat.completions": MESSAGES, "messages": CHAT}
