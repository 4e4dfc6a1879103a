"""Translation between the OpenAI Chat Completions and Anthropic Messages wire formats, so a request can fall
back to a provider that speaks the other one. Pure and sans-IO: bytes in, bytes out.

    t = translation(client_operation, provider_operation, client_body)   # raises Untranslatable
    provider_body = t.request(client_body, model)
    client_body = t.response(provider_body)          # a whole 2xx answer
    client_error = t.error(status, provider_error)   # any non-2xx answer
    s = t.stream(); s.feed(bytes)...; s.close()      # one streamed answer

What each direction carries over, drops or refuses is listed in `chat_via_messages` (a Chat Completions
client, an Anthropic provider) and `messages_via_chat` (the reverse).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Protocol

from fiscus.providers.messages import Operation
from fiscus.providers.translate import chat_via_messages, messages_via_chat
from fiscus.providers.translate.common import (
    Json,
    Untranslatable,
    anthropic_error,
    anthropic_error_type,
    dumps,
    load_object,
    openai_error,
    openai_error_type,
    read_error,
)

__all__ = ["StreamTranslation", "Translation", "Untranslatable", "translation"]


class StreamTranslation(Protocol):
    """One streamed answer: raw SSE bytes from the provider in, split anywhere; SSE bytes for the client out."""

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class Translation(ABC):
    """One request's translation. `operation` is what the provider is called with."""

    operation: Operation

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._parsed = load_object(body, "the request body")
        self._created = int(time.time())  # Chat Completions' `created`, absent from Messages answers
        self._converted = self._convert(self._parsed, "")  # fails here, before any call, if untranslatable

    def request(self, body: bytes, model: str) -> bytes:
        """The client's request body → the provider's, for `model`."""
        if body == self._body:
            return dumps(self._converted | {"model": model})
        return dumps(self._convert(load_object(body, "the request body"), model))

    @abstractmethod
    def response(self, body: bytes) -> bytes:
        """The provider's whole 2xx JSON answer → the client's format."""

    @abstractmethod
    def error(self, status: int, body: bytes) -> bytes:
        """The provider's error body → the client's error format; a junk body is kept as the message."""

    @abstractmethod
    def stream(self) -> StreamTranslation:
        """A fresh translator for one streamed answer."""

    @abstractmethod
    def _convert(self, body: Json, model: str) -> Json:
        """The client's parsed request → the provider's, for `model`; raises `Untranslatable`."""


class ChatViaMessages(Translation):
    """A Chat Completions client, an Anthropic Messages provider."""

    operation: Operation = "messages"

    def _convert(self, body: Json, model: str) -> Json:
        return chat_via_messages.request(body, model)

    def response(self, body: bytes) -> bytes:
        return dumps(chat_via_messages.response(load_object(body, "the provider's answer"), self._created))

    def error(self, status: int, body: bytes) -> bytes:
        message, kind = read_error(status, body)
        return dumps(openai_error(message, openai_error_type(status), kind))

    def stream(self) -> StreamTranslation:
        options: Any = self._parsed.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return chat_via_messages.StreamToChat(include_usage, self._created)


class MessagesViaChat(Translation):
    """An Anthropic Messages client, a Chat Completions provider."""

    operation: Operation = "chat.completions"

    def _convert(self, body: Json, model: str) -> Json:
        return messages_via_chat.request(body, model)

    def response(self, body: bytes) -> bytes:
        return dumps(messages_via_chat.response(load_object(body, "the provider's answer")))

    def error(self, status: int, body: bytes) -> bytes:
        message, _ = read_error(status, body)
        return dumps(anthropic_error(message, anthropic_error_type(status)))

    def stream(self) -> StreamTranslation:
        return messages_via_chat.StreamToMessages()


_PAIRS: dict[tuple[str, str], type[Translation]] = {
    ("chat.completions", "messages"): ChatViaMessages,
    ("messages", "chat.completions"): MessagesViaChat,
}


def translation(client_operation: Operation, provider_operation: Operation, body: bytes) -> Translation:
    """The translation of one request from the client's operation to the provider's; raises `Untranslatable`
    for a pair not translated or a request the provider's format cannot carry."""
    kind = _PAIRS.get((client_operation, provider_operation))
    if kind is None:
        raise Untranslatable(f"no translation from {client_operation} to {provider_operation}")
    return kind(body)
