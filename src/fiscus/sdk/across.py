"""Routes out of a model's family through a wrapped client (`routes:` from a GPT model to a Claude model, or
back), as the gateway takes them: the call is admitted, priced and recorded as the other provider's model, sent
to that provider through the same translation layer (`fiscus.providers.translate`), and its answer handed back
in the client's own format — the SDK's own objects, parsed by the SDK from the translated answer.

The other provider's credentials come from the config the governor was opened from (the first provider of kind
`openai` / `anthropic` whose `models` name the model, else the first of that kind), else from the environment
(`OPENAI_API_KEY` / `ANTHROPIC_API_KEY`, and `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` when set). Without them
the route is not taken: the call stays on the model asked for, and the reason is logged once.

Chat Completions and Messages calls are carried across (`create`, streamed or not, `with_raw_response` and
`with_streaming_response`; `messages.stream`): the pair the translation layer speaks. A Responses call keeps to
its family.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from fiscus.errors import ConfigError
from fiscus.usage.wire import WireFormat

if TYPE_CHECKING:
    from fiscus.config import ProviderConfig
    from fiscus.providers.endpoint import Endpoint

log = logging.getLogger("fiscus.sdk")

# The client's operation for each format that crosses, and the provider kind of the other side.
OPERATION = {WireFormat.OPENAI_CHAT: "chat.completions", WireFormat.ANTHROPIC: "messages"}
OTHER = {WireFormat.OPENAI_CHAT: ("anthropic", "messages"), WireFormat.ANTHROPIC: ("openai", "chat.completions")}

# The format of the call being admitted when it may cross (create and with_raw_response.create of the two
# formats that translate): the governor's route asks `Across.provider_of` inside that admission.
crossing: contextvars.ContextVar[WireFormat | None] = contextvars.ContextVar("fiscus_crossing", default=None)


class Across:
    """The providers a governor's wrapped clients can reach out of their family (see the module docstring)."""

    def __init__(self, providers: Mapping[str, ProviderConfig], catalogue: Any, env: Mapping[str, str] | None = None):
        self._providers = dict(providers)
        self._catalogue = catalogue
        self._env = os.environ if env is None else env
        self._endpoints: dict[tuple[str, str], Endpoint | str] = {}  # (model, kind) → its endpoint, or why none
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def provider_of(self, model: str) -> str | None:
        """The provider a route out of the client's family sends `model` to, or None (the route not taken, the
        reason logged once)."""
        fmt = crossing.get()
        if fmt is None:
            return None
        found = self._lookup(model, OTHER[fmt][0])
        if isinstance(found, str):
            with self._lock:
                if model not in self._logged:
                    self._logged.add(model)
                    log.warning("fiscus: route to %s not taken, the call stays on its model: %s", model, found)
            return None
        return found.name

    def endpoint(self, fmt: WireFormat, model: str) -> Endpoint | None:
        """The other side's endpoint for `model`, when a call of `fmt` can cross to it."""
        found = self._lookup(model, OTHER[fmt][0]) if fmt in OTHER else None
        return None if found is None or isinstance(found, str) else found

    def _lookup(self, model: str, kind: str) -> Endpoint | str:
        with self._lock:
            found = self._endpoints.get((model, kind))
            if found is None:
                found = self._endpoints[(model, kind)] = self._find(model, kind)
            return found

    def _find(self, model: str, kind: str) -> Endpoint | str:
        from fiscus.config import ProviderConfig
        from fiscus.providers.registry import make_endpoint

        if not self._catalogue.knows(provider=kind, model=model):
            return f"{model} is not a model fiscus prices under {kind}"
        candidates = [(name, p) for name, p in self._providers.items() if p.kind == kind]
        chosen = next((c for c in candidates if model in c[1].models), None)
        chosen = chosen or next((c for c in candidates if any(fnmatchcase(model, g) for g in c[1].models)), None)
        chosen = chosen or next(iter(candidates), None)
        try:
            if chosen is not None:
                return make_endpoint(chosen[0], chosen[1], self._env)
            base_url = self._env.get(f"{kind.upper()}_BASE_URL") or None
            return make_endpoint(kind, ProviderConfig(kind=kind, base_url=base_url), self._env)
        except ConfigError as exc:
            return f"no {kind} credentials ({exc})"


_installed: dict[int, Across] = {}  # id(governor) → what its wrapped clients cross with
_install_lock = threading.Lock()


def install(governor: Any, settings: Any | None) -> None:
    """Let `governor`'s routes out of a family reach the other provider from wrapped clients (once per governor;
    a governor a door already set up, such as the gateway's, is left as it is)."""
    rules = getattr(governor, "task_classes", None)
    policy = getattr(governor, "policy", None)
    if rules is None or policy is None or not policy.cross_routes:
        return
    with _install_lock:
        if rules.provider_of is not None:
            return
        across = _installed[id(governor)] = Across(settings.providers if settings else {}, governor.catalogue)
        rules.provider_of = across.provider_of


def endpoint_for(governor: Any, fmt: WireFormat, model: str) -> Endpoint | None:
    """The other provider's endpoint when the governor routed a call of `fmt` out of its family onto `model`,
    else None (the call stays in its family)."""
    across = _installed.get(id(governor))
    return across.endpoint(fmt, model) if across is not None else None
