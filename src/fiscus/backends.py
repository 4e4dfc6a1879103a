"""Backends chosen by URL scheme: one small registry per interface (budget store, breaker state, key store).

An interface module declares which class serves which scheme, by dotted name, and the class is imported only
when a URL of its scheme is opened: the interface never imports its implementations (which import it), and a
driver (redis, psycopg) is loaded only when it is asked for. A plugin adds a scheme with `register`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from fiscus.errors import StoreError

T = TypeVar("T")

# How a backend is built from its URL: from nothing (memory), from the file path of a sqlite:/// URL, or from
# the whole URL (servers: the URL carries host, credentials and options such as ?prefix=).
Takes = Literal["nothing", "path", "url"]


@dataclass(frozen=True, slots=True)
class Backend:
    target: str  # "package.module:Class" or "package.module:Class.factory"
    takes: Takes


class Backends(Generic[T]):
    def __init__(self, what: str, backends: dict[str, Backend], *, accepted: tuple[str, ...]) -> None:
        self._what = what
        self._backends = dict(backends)
        self._accepted = accepted

    def register(self, scheme: str, backend: Backend) -> None:
        self._backends[scheme.lower()] = backend

    def schemes(self) -> tuple[str, ...]:
        return tuple(self._backends)

    def open(self, url: str, **options: Any) -> T:
        scheme, sep, _ = url.partition("://")
        backend = self._backends.get(scheme.lower()) if sep else None
        if backend is None:
            raise StoreError(f"{self._what} URL {url!r}: unknown scheme; accepted: {', '.join(self._accepted)}")
        factory = _load(backend.target)
        if backend.takes == "nothing":
            return factory(**options)  # type: ignore[no-any-return]
        if backend.takes == "path":
            return factory(sqlite_path(url, self._what), **options)  # type: ignore[no-any-return]
        return factory(url, **options)  # type: ignore[no-any-return]


def sqlite_path(url: str, what: str) -> str:
    """The file of `sqlite:///relative.db` or `sqlite:////absolute.db`."""
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise StoreError(f"{what} URL {url!r}: write sqlite:///relative/path.db or sqlite:////absolute.db")
    return url[len("sqlite:///") :]


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module)
    for name in attribute.split("."):
        found = getattr(found, name)
    return found
