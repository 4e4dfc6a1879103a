"""Usage fields some vendors add to Chat Completions usage: DeepSeek's cache hit/miss split, OpenRouter's cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request

VENDOR = "fiscus.emulator.vendor"  # the request scope key a vendor route marks its requests with


def vendor_usage(request: Request, model: str, usage: dict[str, Any], steered_cost: Decimal | None) -> dict[str, Any]:
    """The Chat usage object with what this vendor adds to it."""
    vendor = request.scope.get(VENDOR)
    if vendor == "deepseek":
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        return usage | {"prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": usage["prompt_tokens"] - cached}
    if vendor == "openrouter":
        cost = steered_cost if steered_cost is not None else _catalogue_cost(model, usage)
        return usage | {"cost": float(cost), "is_byok": False}
    return usage


def _catalogue_cost(model: str, usage: dict[str, Any]) -> Decimal:
    from fiscus.pricing import PriceCatalogue  # only OpenRouter's emulation prices its calls
    from fiscus.usage.openai_chat import usage_from_fields

    try:
        return PriceCatalogue().price(usage_from_fields(usage), provider="openrouter", model=model).total
    except Exception:  # a model the catalogue lacks is charged nothing here, as a free OpenRouter model is
        return Decimal(0)
