"""Pricing: exact cost of a call from genai-prices' catalogue plus local overrides."""

from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.pricing.cost import Cost, usd
from fiscus.pricing.overrides import Alias, Discount, FallbackPrice, GpuHourPrice, ModelOverride, PricingConfig
from fiscus.pricing.sheet import PriceSheet, Rate

__all__ = [
    "Alias",
    "Cost",
    "Discount",
    "FallbackPrice",
    "GpuHourPrice",
    "ModelOverride",
    "PriceCatalogue",
    "PriceSheet",
    "PricingConfig",
    "Rate",
    "usd",
]
