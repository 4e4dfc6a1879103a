"""A Chat Completions client served by an Anthropic Messages provider: its request to Messages, the answer,
streamed or whole, back to Chat Completions.

Carried over: system/developer messages (to the top-level `system`, in order, wherever they stood), text,
images (data: URLs as base64, http(s) URLs as url sources), PDF and plain-text files given as `file_data`,
tool calls and tool results, function tools and `tool_choice`, `parallel_tool_calls: false`, the output cap
(4096 when absent: Messages requires one), temperature (clamped to 0..1), top_p, stop, stream and user.
Dropped because they change nothing essential in the answer's kind: seed, frequency/presence penalties,
reasoning_effort, verbosity, prediction, store, metadata, service tier and prompt-cache keys, n = 1,
logprobs = false, text-only modalities, a `text` response_format, a message's `name`, an image's `detail` and
a tool's `strict`. Anything else raises `Untranslatable`: n > 1, logprobs, audio, other response formats,
logit_bias, legacy functions, web search, non-function tools, audio input, files by id, tool-call arguments
that are not a JSON object, and any parameter not listed here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from fiscus.providers.translate.common import (
    Json,
    Untranslatable,
    as_object,
    openai_stream_error,
    openai_tool_call,
    openai_usage_from_anthropic,
    sequence,
    sse_data,
)
from fiscus.usage.sse import SSEEvent, SSEParser
from fiscus.usage.stream import child, decode

DEFAULT_MAX_TOKENS = 4096

# Accepted and dropped: sampling or serving hints whose absence still yields the same kind of answer.
_DROPPED = frozenset(
    {"seed", "frequency_penalty", "presence_penalty", "reasoning_effort", "verbosity", "prediction", "store",
     "metadata", "service_tier", "prompt_cache_key", "prompt_cache_retention", "stream_options"}
)  # fmt: skip
_HANDLED = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream", "user",
     "safety_identifier", "tools", "tool_choice", "parallel_tool_calls", "n", "logprobs", "top_logprobs",
     "modalities", "audio", "response_format", "logit_bias"}
)  # fmt: skip
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def request(body: Mapping[str, Any], model: str) -> Json:
    _check_parameters(body)
    system, messages = _messages(sequence(body.get("messages"), "messages"))
    out: Json = {"model": model, "messages": messages}
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    cap = body.get("max_completion_tokens")
    if cap is None:
        cap = body.get("max_tokens")
    out["max_tokens"] = DEFAULT_MAX_TOKENS if cap is None else cap
    temperature = body.get("temperature")
    if temperature is not None:
        out["temperature"] = min(max(temperature, 0), 1) if isinstance(temperature, int | float) else temperature
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop
    if body.get("stream"):
        out["stream"] = True
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    tools = sequence(body.get("tools"), "tools")
    if tools:
        out["tools"] = [_tool(tool) for tool in tools]
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _check_parameters(body: Mapping[str, Any]) -> None:
    for key in body:
        if key not in _HANDLED and key not in _DROPPED:
            what = {"functions": "legacy 'functions'", "function_call": "legacy 'function_call'"}.get(key, repr(key))
            raise Untranslatable(f"{what} has no equivalent in Anthropic Messages")
    if body.get("n") not in (None, 1):
        raise Untranslatable("n > 1 (several choices) has no equivalent in Anthropic Messages")
    for key in ("logprobs", "top_logprobs", "audio", "logit_bias"):
        if body.get(key):
            raise Untranslatable(f"{key!r} has no equivalent in Anthropic Messages")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise Untranslatable("'modalities' other than text have no equivalent in Anthropic Messages")
    response_format = body.get("response_format")
    if response_format is not None and child(body, "response_format").get("type") != "text":
        raise Untranslatable("'response_format' other than text has no equivalent in Anthropic Messages")


def _messages(messages: list[Any]) -> tuple[list[Json], list[Json]]:
    system: list[Json] = []
    out: list[Json] = []
    for raw in messages:
        message = as_object(raw, "a message")
        role = message.get("role")
        if "function_call" in message:
            raise Untranslatable("legacy 'function_call' in a message has no equivalent in Anthropic Messages")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"a {role} message"))
        elif role == "user":
            _append(out, "user", _user_blocks(message.get("content")))
        elif role == "assistant":
            _append(out, "assistant", _assistant_blocks(message))
        elif role == "tool":
            content = message.get("content")
            result = content if isinstance(content, str) else _text_blocks(content, "a tool message")
            call_id = message.get("tool_call_id")
            _append(out, "user", [{"type": "tool_result", "tool_use_id": call_id, "content": result}])
        else:
            raise Untranslatable(f"messages with role {role!r} have no equivalent in Anthropic Messages")
    return system, out


def _append(out: list[Json], role: str, blocks: list[Json]) -> None:
    """Messages alternate roles: consecutive same-role messages (e.g. several tool results) become one."""
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _text_blocks(content: Any, what: str) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in sequence(content, what):
        part = as_object(part, f"a content part of {what}")
        if part.get("type") not in ("text", "refusal"):
            raise Untranslatable(f"{part.get('type')!r} parts in {what} have no equivalent in Anthropic Messages")
        text = part.get("text") if part["type"] == "text" else part.get("refusal")
        if text:
            blocks.append({"type": "text", "text": text})
    return blocks


def _user_blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return _text_blocks(content, "a user message")
    blocks = []
    for raw in sequence(content, "a user message"):
        part = as_object(raw, "a content part")
        kind = part.get("type")
        if kind == "text":
            blocks.extend(_text_blocks([part], "a user message"))
        elif kind == "image_url":
            blocks.append(_image(child(part, "image_url").get("url")))
        elif kind == "file":
            blocks.append(_document(child(part, "file")))
        else:
            raise Untranslatable(f"{kind!r} content parts have no equivalent in Anthropic Messages")
    return blocks


def _data_url(url: str) -> tuple[str, str]:
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise Untranslatable("a data: URL that is not base64 has no equivalent in Anthropic Messages")
    return head[5:-7], data


def _image(url: Any) -> Json:
    if isinstance(url, str) and url.startswith("data:"):
        media_type, data = _data_url(url)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise Untranslatable("an image_url that is neither a data: nor an http(s) URL")


def _document(file: Mapping[str, Any]) -> Json:
    data = file.get("file_data")
    if not isinstance(data, str) or not data.startswith("data:"):
        raise Untranslatable("a file given by file_id (or without file_data) has no equivalent in Anthropic Messages")
    media_type, encoded = _data_url(data)
    if media_type == "application/pdf":
        source: Json = {"type": "base64", "media_type": media_type, "data": encoded}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Untranslatable("a text/plain file whose data is not base64 UTF-8") from None
        source = {"type": "text", "media_type": media_type, "data": text}
    else:
        raise Untranslatable(f"{media_type} files have no equivalent in Anthropic Messages (PDF and text only)")
    block: Json = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: Mapping[str, Any]) -> list[Json]:
    blocks = _text_blocks(message.get("content"), "an assistant message")
    if isinstance(message.get("refusal"), str) and message["refusal"] and not blocks:
        blocks.append({"type": "text", "text": message["refusal"]})
    for raw in sequence(message.get("tool_calls"), "tool_calls"):
        call = as_object(raw, "a tool call")
        if call.get("type", "function") != "function":
            raise Untranslatable(f"{call.get('type')!r} tool calls have no equivalent in Anthropic Messages")
        function = child(call, "function")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments)
        except (orjson.JSONDecodeError, TypeError):
            parsed = None
        if not isinstance(parsed, dict):
            raise Untranslatable("a tool call whose arguments are not a JSON object (Anthropic needs an object)")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed})
    return blocks


def _tool(raw: Any) -> Json:
    tool = as_object(raw, "a tool")
    if tool.get("type") != "function":
        raise Untranslatable(f"{tool.get('type')!r} tools have no equivalent in Anthropic Messages")
    function = child(tool, "function")
    out: Json = {"name": function.get("name")}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any) -> Json | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "tool", "name": child(choice, "function").get("name")}
    raise Untranslatable(f"tool_choice {choice!r} has no equivalent in Anthropic Messages")


def response(body: Mapping[str, Any], created: int) -> Json:
    """A Messages answer → a `chat.completion`. Thinking blocks are not carried (Chat Completions shows no
    reasoning either); their tokens stay counted in completion_tokens and reasoning_tokens."""
    texts: list[str] = []
    calls: list[Json] = []
    for block in sequence(body.get("content"), "content"):
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(openai_tool_call(block))
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    stop = body.get("stop_reason")
    return {
        "id": body.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _FINISH.get(stop or "", "stop")}
        ],
        "usage": openai_usage_from_anthropic(child(body, "usage")),
    }


class StreamToChat:
    """Messages events → `chat.completion.chunk`s: a role delta, content and tool-call deltas, a finish_reason
    chunk, the usage chunk when the request asked `stream_options.include_usage`, then `data: [DONE]`.

    The tail (usage, [DONE]) is sent at `message_stop`, or on `close()` if `message_delta` (which carries the
    final usage) came but `message_stop` did not. A stream cut off before that ends without it, as the
    provider's did. A mid-stream `error` becomes OpenAI's `data: {"error": ...}` and ends the translation."""

    def __init__(self, include_usage: bool, created: int) -> None:
        self._parser = SSEParser()
        self._include_usage = include_usage
        self._created = created
        self._id: str | None = None
        self._model: str | None = None
        self._usage: Json = {}  # message_start's usage, overwritten field by field by message_delta's
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool-call index
        self._finished = False  # message_delta seen: the usage is final
        self._ended = False  # tail or error sent: nothing more goes out

    def feed(self, data: bytes) -> bytes:
        return self._events(self._parser.feed(data))

    def close(self) -> bytes:
        out = self._events(self._parser.close())
        if self._finished and not self._ended:
            out += self._tail()
        return out

    def _events(self, events: list[SSEEvent]) -> bytes:
        out = b""
        for event in events:
            if self._ended:
                break
            parsed = decode(event.data)
            if parsed is not None:
                out += self._event(parsed)
        return out

    def _event(self, event: Mapping[str, Any]) -> bytes:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = child(event, "delta")
            if delta.get("type") == "text_delta" and delta.get("text"):
                return self._chunk({"content": delta["text"]})
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                index = self._tools.get(event.get("index", -1))
                if index is not None:
                    call = {"index": index, "function": {"arguments": delta["partial_json"]}}
                    return self._chunk({"tool_calls": [call]})
            return b""  # thinking, signatures, citations: nothing Chat Completions carries
        if kind == "content_block_start":
            block = child(event, "content_block")
            if block.get("type") == "text" and block.get("text"):
                return self._chunk({"content": block["text"]})
            if block.get("type") == "tool_use":
                index = self._tools[event.get("index", -1)] = len(self._tools)
                arguments = orjson.dumps(block["input"]).decode() if block.get("input") else ""
                function = {"name": block.get("name"), "arguments": arguments}
                return self._chunk(
                    {"tool_calls": [{"index": index, "id": block.get("id"), "type": "function", "function": function}]}
                )
            return b""
        if kind == "message_start":
            message = child(event, "message")
            self._id, self._model = message.get("id"), message.get("model")
            self._merge(child(message, "usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            self._merge(child(event, "usage"))
            self._finished = True
            stop = child(event, "delta").get("stop_reason")
            return self._chunk({}, _FINISH.get(stop or "", "stop"))
        if kind == "message_stop":
            return self._tail()
        if kind == "ping":
            return b": ping\n\n"  # a comment: keeps the client's connection alive, parsed by no one
        if kind == "error":
            self._ended = True
            return sse_data(openai_stream_error(event))
        return b""

    def _merge(self, usage: Mapping[str, Any]) -> None:
        for key, value in usage.items():
            if value is not None:
                self._usage[key] = value

    def _chunk(self, delta: Json, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_data(self._base([choice]))

    def _base(self, choices: list[Json]) -> Json:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }

    def _tail(self) -> bytes:
        self._ended = True
        out = b""
        if self._include_usage:
            out = sse_data(self._base([]) | {"usage": openai_usage_from_anthropic(self._usage)})
        return out + b"data: [DONE]\n\n"
