"""`WireFormat`: the response formats fiscus reads usage from, and which providers speak each."""

from __future__ import annotations

from enum import StrEnum


class WireFormat(StrEnum):
    OPENAI_CHAT = "openai_chat"
    OPENAI_RESPONSES = "openai_responses"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    BEDROCK_CONVERSE = "bedrock_converse"

    @property
    def provider(self) -> str:
        """The provider name fiscus prices this format under when no provider is named (the pricing catalogue
        maps `gemini` to Google and `bedrock` to AWS)."""
        return _PROVIDERS[self]


_PROVIDERS = {
    WireFormat.OPENAI_CHAT: "openai",
    WireFormat.OPENAI_RESPONSES: "openai",
    WireFormat.ANTHROPIC: "anthropic",
    WireFormat.GEMINI: "gemini",
    WireFormat.BEDROCK_CONVERSE: "bedrock",
}

_CHAT = (WireFormat.OPENAI_CHAT,)
_OPENAI = (WireFormat.OPENAI_CHAT, WireFormat.OPENAI_RESPONSES)

# Provider names a user may give, and the formats each can produce. Bedrock answers in Converse, in Anthropic's
# Messages format (InvokeModel with a Claude model) and in Chat Completions (its OpenAI-compatible endpoint);
# Vertex in Gemini's and, for Claude, in Anthropic's.
PROVIDER_FORMATS: dict[str, tuple[WireFormat, ...]] = {
    "openai": _OPENAI,
    "azure": _OPENAI,
    "azure-openai": _OPENAI,
    "anthropic": (WireFormat.ANTHROPIC,),
    "gemini": (WireFormat.GEMINI,),
    "google": (WireFormat.GEMINI,),
    "vertex": (WireFormat.GEMINI, WireFormat.ANTHROPIC),
    "bedrock": (WireFormat.BEDROCK_CONVERSE, WireFormat.ANTHROPIC, WireFormat.OPENAI_CHAT),
    "deepseek": _CHAT,
    "groq": _OPENAI,
    "together": _CHAT,
    "mistral": _CHAT,
    "xai": _OPENAI,
    "openrouter": _CHAT,
}
