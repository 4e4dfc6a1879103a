"""An Anthropic Messages client served by a Chat Completions provider: its request to Chat Completions, the
answer, streamed or whole, back to Messages.

Carried over: `system` (a string or text blocks), text, images (base64 as data: URLs, url sources as URLs),
base64 PDF documents (as `file` parts) and plain-text documents (as text), tool_use and tool_result blocks
(an `is_error` result is prefixed "Error: ", Chat Completions having no flag for it), custom tools and
`tool_choice` (any → required, `disable_parallel_tool_use` → `parallel_tool_calls: false`), max_tokens (as
max_completion_tokens), temperature, top_p, stop_sequences, stream (with `include_usage`, so the stream
reports usage) and metadata.user_id.
Dropped, the answer staying a Messages answer of the same kind: `thinking` (the answer then has no thinking
blocks, which a client must treat as optional anyway) and thinking blocks in past assistant turns, top_k,
service_tier, inference_geo and every `cache_control` (caching changes the cost, not the answer).
Anything else — server tools, MCP servers, containers, structured output formats, file-id sources,
URL or content-block documents, images in tool results, more than 4 stop sequences, any parameter not
listed here — raises `Untranslatable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from fiscus.providers.translate.common import (
    Json,
    Untranslatable,
    anthropic_stream_error,
    anthropic_usage_from_openai,
    as_object,
    openai_tool_call,
    sequence,
    sse_event,
)
from fiscus.usage import openai_chat as openai_usage
from fiscus.usage.sse import SSEEvent, SSEParser
from fiscus.usage.stream import child, decode

_DROPPED = frozenset({"thinking", "top_k", "service_tier", "inference_geo", "cache_control"})
_HANDLED = frozenset(
    {"model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "metadata",
     "tools", "tool_choice"}
)  # fmt: skip
_MAX_STOPS = 4  # Chat Completions' limit on `stop`
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
_STOP["content_filter"] = "refusal"


def request(body: Mapping[str, Any], model: str) -> Json:
    for key in body:
        if key not in _HANDLED and key not in _DROPPED:
            raise Untranslatable(f"{key!r} has no equivalent in OpenAI Chat Completions")
    messages: list[Json] = []
    system = body.get("system")
    if isinstance(system, str):
        if system:
            messages.append({"role": "system", "content": system})
    elif system is not None:
        parts = _text_parts(system, "system")
        if parts:
            messages.append({"role": "system", "content": parts})
    for raw in sequence(body.get("messages"), "messages"):
        messages.extend(_message(as_object(raw, "a message")))
    out: Json = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stops = sequence(body.get("stop_sequences"), "stop_sequences")
    if len(stops) > _MAX_STOPS:
        raise Untranslatable(f"more than {_MAX_STOPS} stop_sequences: Chat Completions takes at most {_MAX_STOPS}")
    if stops:
        out["stop"] = stops
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    user = child(body, "metadata").get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    tools = sequence(body.get("tools"), "tools")
    if tools:
        out["tools"] = [_tool(tool) for tool in tools]
        choice = child(body, "tool_choice")
        if choice:
            out["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                out["parallel_tool_calls"] = False
    return out


def _text_parts(blocks: Any, what: str) -> list[Json]:
    parts = []
    for raw in sequence(blocks, what):
        block = as_object(raw, f"a block of {what}")
        if block.get("type") != "text":
            raise Untranslatable(f"{block.get('type')!r} blocks in {what} have no equivalent in Chat Completions")
        if block.get("text"):
            parts.append({"type": "text", "text": block["text"]})
    return parts


def _message(message: Mapping[str, Any]) -> list[Json]:
    role = message.get("role")
    content = message.get("content")
    if role == "assistant":
        return [_assistant(content)]
    if role != "user":
        raise Untranslatable(f"messages with role {role!r} have no equivalent in Chat Completions")
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    # Tool results become `tool` messages, which must directly follow the assistant's tool calls: they go first.
    results: list[Json] = []
    parts: list[Json] = []
    for raw in sequence(content, "a user message"):
        block = as_object(raw, "a content block")
        kind = block.get("type")
        if kind == "tool_result":
            results.append(_tool_result(block))
        elif kind == "text":
            if block.get("text"):
                parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image(child(block, "source")))
        elif kind == "document":
            parts.append(_document(block))
        else:
            raise Untranslatable(f"{kind!r} blocks have no equivalent in Chat Completions")
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        results.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return results


def _image(source: Mapping[str, Any]) -> Json:
    kind = source.get("type")
    if kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif kind == "url":
        url = source.get("url")
    else:
        raise Untranslatable(f"images from a {kind!r} source have no equivalent in Chat Completions")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: Mapping[str, Any]) -> Json:
    source = child(block, "source")
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        file: Json = {"file_data": f"data:application/pdf;base64,{source.get('data')}"}
        file["filename"] = block["title"] if isinstance(block.get("title"), str) else "document.pdf"
        return {"type": "file", "file": file}
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    raise Untranslatable(f"documents from a {source.get('type')!r} source have no equivalent in Chat Completions")


def _tool_result(block: Mapping[str, Any]) -> Json:
    content = block.get("content")
    result: str | list[Json] = "" if content is None else content if isinstance(content, str) else []
    if isinstance(content, list):
        result = _text_parts(content, "a tool_result") or ""
    if block.get("is_error") and isinstance(result, str):
        result = f"Error: {result}"
    elif block.get("is_error"):
        result = [{"type": "text", "text": "Error: "}, *result]
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": result}


def _assistant(content: Any) -> Json:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[Json] = []
    for raw in sequence(content, "an assistant message"):
        block = as_object(raw, "a content block")
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(openai_tool_call(block))
        elif kind not in ("thinking", "redacted_thinking"):
            raise Untranslatable(f"{kind!r} blocks have no equivalent in Chat Completions")
    out: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool(raw: Any) -> Json:
    tool = as_object(raw, "a tool")
    if tool.get("type") not in (None, "custom"):
        raise Untranslatable(f"the server tool {tool.get('type')!r} has no equivalent in Chat Completions")
    function: Json = {"name": tool.get("name")}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Mapping[str, Any]) -> Any:
    kind = choice.get("type")
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise Untranslatable(f"tool_choice {kind!r} has no equivalent in Chat Completions")


def _arguments(raw: Any) -> Json:
    """A tool call's arguments as Messages' `input` object. A model's malformed JSON is not dropped (the call
    was paid for and the client may want to see it): it is kept as a string under `_raw_arguments`."""
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": raw}


def response(body: Mapping[str, Any]) -> Json:
    """A `chat.completion` → a Messages answer. A refusal becomes a text block with stop_reason `refusal`;
    OpenAI does not say which stop sequence matched, so a stop is always `end_turn`."""
    choices = sequence(body.get("choices"), "choices")
    choice = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    message = child(choice, "message")
    content: list[Json] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    stop = _STOP.get(choice.get("finish_reason") or "", "end_turn")
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        content.append({"type": "text", "text": message["refusal"]})
        stop = "refusal"
    for call in sequence(message.get("tool_calls"), "tool_calls"):
        function = child(call, "function")
        arguments = _arguments(function.get("arguments"))
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments})
    usage = body.get("usage")
    return {
        "id": body.get("id"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": anthropic_usage_from_openai(usage if isinstance(usage, Mapping) else {}),
    }


class StreamToMessages:
    """`chat.completion.chunk`s → Messages events in Anthropic's order: message_start, per block
    content_block_start / deltas / content_block_stop, then message_delta (stop_reason, usage) and message_stop.

    message_delta waits for the end of the stream (`[DONE]` or `close()`): the usage chunk follows the finish
    chunk, and some servers repeat a running count. A stream that ended without usage (a server ignoring
    `include_usage`) or before its finish chunk gets no message_delta: inventing a zero count would undercount,
    so it ends as a cut-off stream. A mid-stream `{"error": ...}` becomes an `error` event."""

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._started = False
        self._next_block = 0
        self._open: tuple[str, int] | None = None  # ("text" | "tool", OpenAI tool index or -1), block index
        self._open_index = -1
        self._tools: dict[int, int] = {}  # OpenAI tool-call index → block index
        self._stop: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._ended = False

    def feed(self, data: bytes) -> bytes:
        return self._events(self._parser.feed(data))

    def close(self) -> bytes:
        out = self._events(self._parser.close())
        return out + self._finish()

    def _events(self, events: list[SSEEvent]) -> bytes:
        out = b""
        for event in events:
            if self._ended:
                break
            if event.is_done:
                out += self._finish()
                continue
            chunk = decode(event.data)
            if chunk is not None:
                out += self._chunk(chunk)
        return out

    def _chunk(self, chunk: Mapping[str, Any]) -> bytes:
        if "error" in chunk:
            self._ended = True
            return sse_event("error", anthropic_stream_error(chunk))
        out = b""
        if not self._started:
            self._started = True
            message = {"id": chunk.get("id"), "type": "message", "role": "assistant", "model": chunk.get("model"),
                       "content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": 0, "output_tokens": 0}}  # fmt: skip
            out += sse_event("message_start", {"type": "message_start", "message": message})
        if openai_usage.is_usage(chunk.get("usage")):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                out += self._delta(child(choice, "delta"), choice.get("finish_reason"))
        return out

    def _delta(self, delta: Mapping[str, Any], finish: Any) -> bytes:
        out = b""
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                if self._open is None or self._open[0] != "text":
                    out += self._start({"type": "text", "text": ""}, ("text", -1))
                out += self._block_delta({"type": "text_delta", "text": text})
                if key == "refusal":
                    self._stop = "refusal"
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, Mapping):
                continue
            index = call.get("index", 0)
            function = child(call, "function")
            if index not in self._tools:
                block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": {}}
                out += self._start(block, ("tool", index))
                self._tools[index] = self._open_index
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out += self._block_delta({"type": "input_json_delta", "partial_json": arguments}, self._tools[index])
        if isinstance(finish, str):
            out += self._stop_block()
            if self._stop is None:
                self._stop = _STOP.get(finish, "end_turn")
        return out

    def _start(self, block: Json, kind: tuple[str, int]) -> bytes:
        out = self._stop_block()
        self._open, self._open_index = kind, self._next_block
        self._next_block += 1
        return out + sse_event(
            "content_block_start", {"type": "content_block_start", "index": self._open_index, "content_block": block}
        )

    def _block_delta(self, delta: Json, index: int | None = None) -> bytes:
        index = self._open_index if index is None else index
        return sse_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _stop_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": self._open_index})

    def _finish(self) -> bytes:
        if self._ended or not self._started:
            return b""
        self._ended = True
        out = self._stop_block()
        if self._stop is None or self._usage is None:
            return out
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        usage = anthropic_usage_from_openai(self._usage)
        out += sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + sse_event("message_stop", {"type": "message_stop"})
