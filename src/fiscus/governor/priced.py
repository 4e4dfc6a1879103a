"""What a governed call is priced as: the price sheet for a configured provider's name (priced as its kind where
the catalogue has no prices under the name), and what the call would have cost ungoverned, lever by lever."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from fiscus.errors import PricingError
from fiscus.events.savings import Savings, ungoverned
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.pricing.cost import Cost
from fiscus.pricing.sheet import PriceSheet
from fiscus.usage.model import Usage

if TYPE_CHECKING:
    from fiscus.config import FiscusConfig
    from fiscus.engine.engine import Engine
    from fiscus.governor.admission import Admission


class Sheets:
    """The price sheet of (provider, model, batch, epoch seconds), as the engine asks for it."""

    __slots__ = ("_catalogue", "_priced_as")

    def __init__(self, catalogue: PriceCatalogue, priced_as: Mapping[str, str]) -> None:
        self._catalogue = catalogue
        # A configured provider's name → the catalogue's provider its kind is priced as ("openai-eu" → "openai").
        self._priced_as = dict(priced_as)

    def __call__(self, provider: str, model: str, batch: bool, now: float) -> PriceSheet:
        at = datetime.fromtimestamp(now, UTC)
        kind = self._priced_as.get(provider)
        # The name's own prices first (overrides written for it, or a catalogue provider of that name), then its
        # kind's: a provider configured as "openai-eu" is priced as OpenAI.
        if kind is not None and kind != provider and not self._catalogue.knows(provider=provider, model=model):
            provider = kind
        return self._catalogue.sheet(provider=provider, model=model, at=at, batch=batch)


def ungoverned_cost(
    engine: Engine, admission: Admission, usage: Usage, cost: Cost, sheet: PriceSheet, served: str, provider: str
) -> tuple[Decimal | None, Savings | None]:
    """What the call would have cost as asked, and the saving per lever (`fiscus.events.savings`)."""
    request, asked = admission.request, sheet
    at = admission.timestamp.timestamp()
    if request.batch:  # ungoverned, the same work is sent synchronously: the batch lever is the price difference
        try:
            sheet = engine.sheet(provider, served, False, at)
            asked = sheet
            if served != request.model or provider != request.provider:
                asked = engine.sheet(request.provider, request.model, False, at)
        except PricingError:
            return None, None
        unbatched = sheet.cost(usage).total
        whole, saved = ungoverned(usage, unbatched, asked=asked, served=sheet, shaped=admission.shaped)
        saved.batch = unbatched - cost.total
        return whole, saved
    if served != request.model or provider != request.provider:
        try:
            asked = engine.sheet(request.provider, request.model, request.batch, at)
        except PricingError:  # the model asked for has no price: no ungoverned figure
            return None, None
    return ungoverned(usage, cost.total, asked=asked, served=sheet, shaped=admission.shaped)


# The catalogue's provider for each kind of configured provider (an openai-compatible server has none: its
# models are priced by `pricing.models` overrides under the provider's own name).
_KIND_PRICED_AS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "azure-openai": "azure"} | {
    kind: kind for kind in ("bedrock", "vertex", "deepseek", "groq", "together", "mistral", "xai", "openrouter")
}  # the catalogue maps bedrock, vertex and xai to its own ids


def priced_as(config: FiscusConfig) -> dict[str, str]:
    """Configured provider name → the catalogue provider its kind is priced as."""
    return {name: _KIND_PRICED_AS[p.kind] for name, p in config.providers.items() if p.kind in _KIND_PRICED_AS}
