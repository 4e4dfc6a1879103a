"""`WireFormat`: the four response formats fiscus reads usage from, and which provider speaks each."""

from __future__ import annotations

from enum import StrEnum


class WireFormat(StrEnum):
    OPENAI_CHAT = "openai_chat"
    OPENAI_RESPONSES = "openai_responses"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"

    @property
    def provider(self) -> str:
        """The provider name fiscus prices this format under (the pricing catalogue maps `gemini` to Google)."""
        return _PROVIDERS[self]


_PROVIDERS = {
    WireFormat.OPENAI_CHAT: "openai",
    WireFormat.OPENAI_RESPONSES: "openai",
    WireFormat.ANTHROPIC: "anthropic",
    WireFormat.GEMINI: "gemini",
}

# Provider names a user may give, and the formats each can produce.
PROVIDER_FORMATS: dict[str, tuple[WireFormat, ...]] = {
    "openai": (WireFormat.OPENAI_CHAT, WireFormat.OPENAI_RESPONSES),
    "anthropic": (WireFormat.ANTHROPIC,),
    "gemini": (WireFormat.GEMINI,),
    "google": (WireFormat.GEMINI,),
}
