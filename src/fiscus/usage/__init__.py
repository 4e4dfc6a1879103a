"""Usage: one normalised type, and a reader per provider wire format (whole bodies and streams)."""

from fiscus.usage.detect import UsageReading, detect_object, read_usage, usage_from_body
from fiscus.usage.estimate import (
    anthropic_cache_write_bound,
    count_message_tokens,
    count_request_tokens,
    estimate_tokens,
)
from fiscus.usage.model import Usage
from fiscus.usage.tracker import StreamUsageTracker
from fiscus.usage.wire import WireFormat

__all__ = [
    "StreamUsageTracker",
    "Usage",
    "UsageReading",
    "WireFormat",
    "anthropic_cache_write_bound",
    "count_message_tokens",
    "count_request_tokens",
    "detect_object",
    "estimate_tokens",
    "read_usage",
    "usage_from_body",
]
