"""Local price overrides from config: custom and self-hosted models, fine-tunes, discounts, aliases, fallback."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECONDS_PER_HOUR = Decimal(3600)
MTOK = Decimal(1_000_000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuHourPrice(_Strict):
    """A self-hosted model priced by the hour of GPU it holds, at a stated throughput."""

    usd_per_hour: Decimal = Field(gt=0)
    output_tokens_per_second: Decimal = Field(gt=0)
    input_tokens_per_second: Decimal | None = Field(default=None, gt=0)

    def per_mtok(self, tokens_per_second: Decimal) -> Decimal:
        return self.usd_per_hour / (tokens_per_second * SECONDS_PER_HOUR) * MTOK


class ModelOverride(_Strict):
    """Prices for one model (or a glob of names) that the catalogue lacks or that you pay differently.

    Give per-million-token rates, or `gpu_hour`, or `base` (priced like that catalogue model, optionally times
    `multiplier`, e.g. a fine-tune billed at 2x its base model).
    """

    provider: str = "*"
    model: str
    valid_from: date | None = None
    input_mtok: Decimal | None = Field(default=None, ge=0)
    output_mtok: Decimal | None = Field(default=None, ge=0)
    cache_read_mtok: Decimal | None = Field(default=None, ge=0)
    cache_write_mtok: Decimal | None = Field(default=None, ge=0)
    cache_write_1h_mtok: Decimal | None = Field(default=None, ge=0)
    gpu_hour: GpuHourPrice | None = None
    base: str | None = None
    base_provider: str | None = None
    multiplier: Decimal = Field(default=Decimal(1), gt=0)

    @model_validator(mode="after")
    def _one_way_to_price(self) -> ModelOverride:
        ways = [self.input_mtok is not None or self.output_mtok is not None, self.gpu_hour is not None, bool(self.base)]
        if sum(ways) != 1:
            raise ValueError("give exactly one of: input_mtok/output_mtok, gpu_hour, base")
        if ways[0] and (self.input_mtok is None or self.output_mtok is None):
            raise ValueError("input_mtok and output_mtok are both required")
        return self

    def matches(self, provider: str, model: str) -> bool:
        return fnmatchcase(provider, self.provider) and fnmatchcase(model, self.model)


class Discount(_Strict):
    """A negotiated discount, e.g. 20 % off committed Anthropic spend."""

    provider: str = "*"
    model: str = "*"
    percent: Decimal = Field(gt=0, lt=100)

    def matches(self, provider: str, model: str) -> bool:
        return fnmatchcase(provider, self.provider) and fnmatchcase(model, self.model)

    @property
    def factor(self) -> Decimal:
        return (Decimal(100) - self.percent) / Decimal(100)


class Alias(_Strict):
    """A deployment name that stands for a catalogue model, e.g. an Azure deployment → its base model."""

    provider: str
    model: str


class FallbackPrice(_Strict):
    input_mtok: Decimal = Field(ge=0)
    output_mtok: Decimal = Field(ge=0)


class PricingConfig(_Strict):
    models: list[ModelOverride] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    aliases: dict[str, Alias] = Field(default_factory=dict)
    fallback: FallbackPrice | None = None
    # Used only for a model with no batch price in the catalogue; providers commonly take 50 % off.
    batch_factor: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)

    def find_model(self, provider: str, model: str, on: date) -> ModelOverride | None:
        """The matching override in force on `on`: the latest `valid_from` not after it wins."""
        best: ModelOverride | None = None
        for entry in self.models:
            if not entry.matches(provider, model):
                continue
            if entry.valid_from and entry.valid_from > on:
                continue
            if best is None or (entry.valid_from or date.min) >= (best.valid_from or date.min):
                best = entry
        return best
