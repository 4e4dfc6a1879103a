"""`PriceCatalogue`: the price of any model at any moment, from genai-prices plus local overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from threading import Lock

from genai_prices import data_snapshot
from genai_prices import types as gp
from genai_prices.data_units import unit_data

from fiscus.errors import PricingError, UnknownModelError
from fiscus.pricing.cost import Cost
from fiscus.pricing.model_names import catalogue_provider, lookup_names
from fiscus.pricing.overrides import ModelOverride, PricingConfig
from fiscus.pricing.sheet import PriceSheet, Rate, reported_cost
from fiscus.usage.model import MODALITIES, Usage

# genai-prices' price key for each (part, modality) fiscus splits usage into.
_MODALITY_PRICE_KEYS = {
    (part, modality): key.format(modality=modality)
    for part, key in (
        ("input", "input_{modality}_mtok"),
        ("cache_read", "cache_{modality}_read_mtok"),
        ("output", "output_{modality}_mtok"),
    )
    for modality in MODALITIES
}
# Server-tool units and their price keys, from genai-prices' own unit table (e.g. web_searches per 1,000).
_TOOL_UNITS = tuple(
    (unit, spec["price_key"], int(spec["per"]))
    for unit, spec in unit_data.items()
    if spec["dimensions"].get("family") == "tool_calls"
)


class PriceCatalogue:
    """Resolves `(provider, model, moment, batch)` to a `PriceSheet`, then prices usage with it.

    Overrides win over the catalogue; an alias is followed first; discounts apply last. An unknown model
    raises `UnknownModelError` unless a fallback price is configured, in which case the cost is flagged.
    """

    def __init__(self, config: PricingConfig | None = None, snapshot: object | None = None) -> None:
        self.config = config or PricingConfig()
        self._snapshot = snapshot
        self._models: dict[tuple[str, str], tuple[gp.Provider, gp.ModelInfo] | None] = {}
        self._sheets: dict[tuple[str, str, bool, object], PriceSheet] = {}
        self._lock = Lock()

    def price(
        self, usage: Usage, *, provider: str, model: str, at: datetime | None = None, batch: bool = False
    ) -> Cost:
        try:
            sheet = self.sheet(provider=provider, model=model, at=at, batch=batch)
        except UnknownModelError:
            # A provider that prices the call itself (OpenRouter) needs no catalogue entry for it.
            reported = usage.detail.reported_cost if usage.detail is not None else None
            if reported is None:
                raise
            return reported_cost(Cost(), reported)
        return sheet.cost(usage)

    def sheet(self, *, provider: str, model: str, at: datetime | None = None, batch: bool = False) -> PriceSheet:
        at = at or datetime.now(UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        provider = provider.lower()
        alias = self.config.aliases.get(model)
        if alias is not None:
            provider, model = alias.provider.lower(), alias.model
        sheet = self._base_sheet(provider, model, at, batch)
        for discount in self.config.discounts:
            if discount.matches(provider, model):
                sheet = sheet.scaled(discount.factor, f"discount {discount.percent}%")
        # Parts of a call billed at another model (an advisor, a fallback) are priced from the same catalogue.
        return replace(sheet, other_model=partial(self._other_model, provider, at, batch))

    def _other_model(self, provider: str, at: datetime, batch: bool, model: str) -> PriceSheet:
        return self.sheet(provider=provider, model=model, at=at, batch=batch)

    def _base_sheet(self, provider: str, model: str, at: datetime, batch: bool) -> PriceSheet:
        override = self.config.find_model(provider, model, at.date())
        if override is not None:
            return self._override_sheet(override, provider, model, at, batch)
        found = self._find(provider, model)
        if found is None:
            fallback = self.config.fallback
            if fallback is None:
                raise UnknownModelError(
                    f"unknown model {model!r} for provider {provider!r}: add it under pricing.models "
                    "in the config, or configure pricing.fallback"
                )
            return PriceSheet(
                provider=provider,
                model=model,
                input=Rate(fallback.input_mtok),
                output=Rate(fallback.output_mtok),
                fallback_price=True,
                source="fallback",
            )
        gp_provider, info = found
        key = (gp_provider.id, info.id, batch, _moment_key(info, at))
        sheet = self._sheets.get(key)
        if sheet is None:
            sheet = _sheet_from_catalogue(gp_provider, info, at, batch, self.config.batch_factor)
            with self._lock:
                self._sheets[key] = sheet
        return sheet

    def _override_sheet(self, entry: ModelOverride, provider: str, model: str, at: datetime, batch: bool) -> PriceSheet:
        if entry.base:
            base = self._base_sheet((entry.base_provider or provider).lower(), entry.base, at, batch)
            sheet = base.scaled(entry.multiplier, f"{model} priced as {entry.base} x {entry.multiplier}")
            return PriceSheet(
                provider=provider,
                model=model,
                input=sheet.input,
                output=sheet.output,
                cache_read=sheet.cache_read,
                cache_write_5m=sheet.cache_write_5m,
                cache_write_1h=sheet.cache_write_1h,
                source="override",
                notes=sheet.notes,
                modality_rates=sheet.modality_rates,
                tool_rates=sheet.tool_rates,
                context_window=sheet.context_window,
            )
        if entry.gpu_hour is not None:
            gpu = entry.gpu_hour
            out = gpu.per_mtok(gpu.output_tokens_per_second)
            inp = gpu.per_mtok(gpu.input_tokens_per_second) if gpu.input_tokens_per_second else out
            rates = {"input": inp, "output": out, "cache_read": None, "cache_write": None, "cache_write_1h": None}
        else:
            rates = {
                "input": entry.input_mtok,
                "output": entry.output_mtok,
                "cache_read": entry.cache_read_mtok,
                "cache_write": entry.cache_write_mtok,
                "cache_write_1h": entry.cache_write_1h_mtok,
            }
        factor = entry.multiplier * (self.config.batch_factor if batch else Decimal(1))

        def rate(value: Decimal | None) -> Rate | None:
            return None if value is None else Rate(value * factor)

        return PriceSheet(
            provider=provider,
            model=model,
            input=Rate(rates["input"] * factor),  # type: ignore[operator]
            output=Rate(rates["output"] * factor),  # type: ignore[operator]
            cache_read=rate(rates["cache_read"]),
            cache_write_5m=rate(rates["cache_write"]),
            cache_write_1h=rate(rates["cache_write_1h"]),
            source="override",
        )

    def _find(self, provider: str, model: str) -> tuple[gp.Provider, gp.ModelInfo] | None:
        """The catalogue's entry: the name as sent first, then its normalised forms (see `model_names`)."""
        key = (provider, model)
        if key in self._models:
            return self._models[key]
        snapshot = self._snapshot or data_snapshot.get_snapshot()
        provider_id = catalogue_provider(provider)
        found = None
        for name in lookup_names(model):
            try:
                found = snapshot.find_provider_model(name, None, provider_id, None)  # type: ignore[attr-defined]
            except LookupError:
                continue
            break
        with self._lock:
            self._models[key] = found
        return found

    def knows(self, *, provider: str, model: str) -> bool:
        """Whether the model can be priced without the fallback."""
        try:
            return not self.sheet(provider=provider, model=model).fallback_price
        except UnknownModelError:
            return False


def _moment_key(info: gp.ModelInfo, at: datetime) -> object:
    """What a cached sheet depends on: the day for date-bound prices, the minute for time-of-day prices."""
    constraints = [p.constraint for p in info.prices] if isinstance(info.prices, list) else []
    constraints += [v.constraint for v in info.price_variants or ()]
    if any(isinstance(c, gp.TimeOfDateConstraint) for c in constraints):
        return at.replace(second=0, microsecond=0)
    if any(constraints):
        return at.date()
    return None


def _sheet_from_catalogue(
    provider: gp.Provider, info: gp.ModelInfo, at: datetime, batch: bool, batch_factor: Decimal
) -> PriceSheet:
    context = {"processing": "batch"} if batch else None
    prices = info.get_prices(at, context)
    standard = info.get_prices(at) if batch else prices
    notes: tuple[str, ...] = ()
    factor = Decimal(1)
    if batch and prices == standard:
        # No batch price in the catalogue for this moment: apply the configured flat batch discount.
        factor = batch_factor
        notes = (f"batch priced at {batch_factor} x standard",)
    input_rate = _rate(getattr(prices, "input_mtok", None))
    output_rate = _rate(getattr(prices, "output_mtok", None))
    if input_rate is None or output_rate is None:
        raise PricingError(f"the catalogue has no token prices for {provider.id}/{info.id}")
    modality_rates = tuple(
        (part, modality, rate)
        for (part, modality), key in _MODALITY_PRICE_KEYS.items()
        if (rate := _rate(getattr(prices, key, None))) is not None
    )
    tool_rates = tuple(
        (unit, Decimal(price), per)
        for unit, key, per in _TOOL_UNITS
        if isinstance(price := getattr(prices, key, None), Decimal | int)
    )
    sheet = PriceSheet(
        provider=provider.id,
        model=info.id,
        input=input_rate,
        output=output_rate,
        cache_read=_rate(getattr(prices, "cache_read_mtok", None)),
        cache_write_5m=_rate(getattr(prices, "cache_write_mtok", None)),
        cache_write_1h=_rate(getattr(prices, "cache_write_1h_mtok", None)),
        notes=notes,
        modality_rates=modality_rates,
        tool_rates=tool_rates,
        context_window=info.context_window or None,
    )
    return sheet.scaled(factor, notes[0]) if factor != 1 else sheet


def _rate(value: Decimal | gp.TieredPrices | None) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, gp.TieredPrices):
        return Rate(value.base, tuple((tier.start, tier.price) for tier in value.tiers))
    return Rate(Decimal(value))


def today() -> date:
    return datetime.now(UTC).date()
