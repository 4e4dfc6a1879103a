"""Map a `CostEvent` to OpenTelemetry GenAI semantic-convention attributes (plus `fiscus.*` for the rest)."""

from __future__ import annotations

from fiscus.events.cost_event import CostEvent

# genai-prices / fiscus provider names → gen_ai.provider.name values of the semantic conventions.
_PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
}


def otel_attributes(event: CostEvent) -> dict[str, str | int | float | bool]:
    """Span attributes for one call. Token counts follow the GenAI conventions: `input_tokens` is every
    input token (cache included), with cache reads and writes broken out beside it."""
    usage = event.usage
    attrs: dict[str, str | int | float | bool] = {
        "gen_ai.provider.name": _PROVIDER_NAMES.get(event.provider, event.provider),
        "gen_ai.request.model": event.requested_model,
        "gen_ai.response.model": event.served_model,
        "gen_ai.usage.input_tokens": usage.total_input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
        "fiscus.event.id": event.id,
        "fiscus.status": str(event.status),
        "fiscus.cost.usd": format(event.cost.total, "f"),
        "fiscus.usage.estimated": usage.estimated,
        "fiscus.cost.fallback_price": event.cost.fallback_price,
    }
    if event.attribution.agent:
        attrs["gen_ai.agent.name"] = event.attribution.agent
    if event.attribution.session:
        attrs["gen_ai.conversation.id"] = event.attribution.session
    for name, value in event.attribution.to_dict().items():
        if value is not None:
            attrs[f"fiscus.attribution.{name}"] = value
    if event.model_tier:
        attrs["fiscus.model_tier"] = event.model_tier
    if event.latency_ms is not None:
        attrs["fiscus.latency_ms"] = event.latency_ms
    if event.error:
        attrs["error.type"] = event.error
    return attrs
