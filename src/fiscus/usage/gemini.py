"""Gemini `generateContent` usage.

`usageMetadata.promptTokenCount` includes `cachedContentTokenCount`; `toolUsePromptTokenCount` (prompts the
model's tools produced) is further input. `candidatesTokenCount` excludes `thoughtsTokenCount`, so output is
their sum and reasoning is the thoughts (billed as output). `promptTokensDetails`, `cacheTokensDetails`,
`toolUsePromptTokensDetails` and `candidatesTokensDetails` split those counts by modality (TEXT, AUDIO, IMAGE,
VIDEO, DOCUMENT); audio, image and video are priced at their own rates where the model has them, a document
as images are (as genai-prices reads it). In a stream (`alt=sse`) any chunk may carry a running
`usageMetadata`; the totals are in the last one, the chunk whose candidate has a `finishReason`.

Grounding with Google Search is billed apart from tokens, per 1,000 (genai-prices' `web_searches` unit): Gemini 3
and later per search query the model ran (`groundingMetadata.webSearchQueries`), Gemini 1.5 and 2.x per grounded
prompt (one per call that searched). Free daily allowances are account-wide, not visible in a call, so every
search is charged: the ledger errs high, never low.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from fiscus.errors import UsageFormatError
from fiscus.usage.model import Usage, UsageDetail
from fiscus.usage.stream import Event, StreamAccumulator, child, count, decode
from fiscus.usage.wire import WireFormat

# A key is a quoted name followed by a colon; a string value never is, so text cannot fake these.
_HAS_USAGE = re.compile(r'"usageMetadata"\s*:')
_HAS_FINISH = re.compile(r'"finishReason"\s*:')
_HAS_GROUNDING = re.compile(r'"groundingMetadata"\s*:')
# Models billed per grounded prompt rather than per search query (the Gemini API's and Vertex's pricing pages).
_PER_PROMPT = re.compile(r"^(?:.*/)?gemini-(?:1|2)\.")


_MODALITIES = {"AUDIO": "audio", "IMAGE": "image", "DOCUMENT": "image", "VIDEO": "video"}


def _by_modality(meta: Mapping[str, Any], key: str) -> dict[str, int]:
    """Non-text tokens of one details list, by fiscus modality."""
    out: dict[str, int] = {}
    items = meta.get(key)
    if items is None:
        return out
    if not isinstance(items, list):
        raise UsageFormatError(f"malformed usage field {key!r}: expected a list, got {items!r}")
    for item in items:
        modality = _MODALITIES.get(item.get("modality")) if isinstance(item, Mapping) else None
        if modality is not None:
            out[modality] = out.get(modality, 0) + count(item, "tokenCount")
    return out


def usage_from_fields(meta: Mapping[str, Any]) -> Usage:
    prompt = count(meta, "promptTokenCount")
    cached = min(count(meta, "cachedContentTokenCount"), prompt)
    thoughts = count(meta, "thoughtsTokenCount")
    candidates = count(meta, "candidatesTokenCount")
    output = candidates + thoughts
    fresh = prompt - cached + count(meta, "toolUsePromptTokenCount")
    modalities: list[tuple[str, str, int]] = []
    if "promptTokensDetails" in meta or "candidatesTokensDetails" in meta or "cacheTokensDetails" in meta:
        prompt_by = _by_modality(meta, "promptTokensDetails")
        cached_by = _by_modality(meta, "cacheTokensDetails")
        tools_by = _by_modality(meta, "toolUsePromptTokensDetails")
        output_by = _by_modality(meta, "candidatesTokensDetails")
        for modality in ("audio", "image", "video"):
            read = min(cached_by.get(modality, 0), cached)
            uncached = max(prompt_by.get(modality, 0) - read, 0) + tools_by.get(modality, 0)
            modalities += [
                ("input", modality, min(uncached, fresh)),
                ("cache_read", modality, read),
                ("output", modality, min(output_by.get(modality, 0), candidates)),
            ]
    kept = tuple(item for item in modalities if item[2])
    return Usage(
        input_tokens=fresh,
        cache_read_tokens=cached,
        output_tokens=output,
        reasoning_tokens=thoughts,
        detail=UsageDetail(kept) if kept else None,
    )


def is_usage(meta: Any) -> bool:
    return isinstance(meta, Mapping) and ("promptTokenCount" in meta or "totalTokenCount" in meta)


def usage_from_body(body: Mapping[str, Any]) -> Usage:
    """Usage of a whole `GenerateContentResponse`."""
    meta = body.get("usageMetadata")
    if not is_usage(meta):
        raise UsageFormatError("no Gemini usage in the body: usageMetadata is missing")
    model = body.get("modelVersion")
    return with_searches(usage_from_fields(meta), search_queries(body), model if isinstance(model, str) else None)


def search_queries(event: Mapping[str, Any]) -> set[tuple[int, str]]:
    """The (candidate, query) pairs of the Google Search queries a response (or stream chunk) says were run."""
    out: set[tuple[int, str]] = set()
    candidates = event.get("candidates")
    for number, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
        grounding = candidate.get("groundingMetadata") if isinstance(candidate, Mapping) else None
        if grounding is None:
            continue
        queries = grounding.get("webSearchQueries") if isinstance(grounding, Mapping) else None
        if not isinstance(queries, list) or not all(isinstance(query, str) for query in queries):
            raise UsageFormatError(f"malformed groundingMetadata.webSearchQueries: {queries!r}")
        out.update((int(candidate.get("index", number)), query) for query in queries)
    return out


def with_searches(usage: Usage, queries: Iterable[tuple[int, str]], model: str | None) -> Usage:
    """`usage` with the grounding searches it is billed for (see the module's note)."""
    queries = set(queries)
    if not queries:
        return usage
    units = 1 if model is not None and _PER_PROMPT.match(model) else len(queries)
    searches = UsageDetail(server_tools=(("web_searches", units),))
    return replace(usage, detail=usage.detail + searches if usage.detail is not None else searches)


def _finished(event: Event) -> bool:
    return any(isinstance(c, Mapping) and c.get("finishReason") for c in event.get("candidates") or ())


class GeminiStreamAccumulator(StreamAccumulator):
    format = WireFormat.GEMINI

    def __init__(self) -> None:
        super().__init__()
        self._meta: str | Mapping[str, Any] | None = None  # the latest usageMetadata, raw until asked for
        self._finished = False
        self._queries: set[tuple[int, str]] = set()

    def feed(self, event: Event) -> None:
        if self.model is None and isinstance(event.get("modelVersion"), str):
            self.model = event["modelVersion"]
        if "candidates" in event:
            self._queries |= search_queries(event)
        if is_usage(event.get("usageMetadata")):
            self._meta = event["usageMetadata"]
        if _finished(event):
            self._finished = True
        self._pending.append(event)

    def feed_data(self, data: str, name: str | None = None) -> None:
        if self.model is None:
            event = decode(data)
            if event is not None:
                self.feed(event)
            return
        # Every chunk may carry text and a running count: keep both raw, decode only what is asked for.
        self._pending.append(data)
        if _HAS_GROUNDING.search(data):
            event = decode(data)
            if event is not None:
                self._queries |= search_queries(event)
        if _HAS_USAGE.search(data):
            self._meta = data
        if not self._finished and _HAS_FINISH.search(data):
            self._finished = True

    def _latest(self) -> Usage | None:
        meta = self._meta
        if isinstance(meta, str):
            event = decode(meta)
            meta = event.get("usageMetadata") if event is not None else None
            self._meta = meta if is_usage(meta) else None
        return with_searches(usage_from_fields(meta), self._queries, self.model) if is_usage(meta) else None

    @property
    def usage(self) -> Usage | None:
        return self._latest() if self._finished else None

    def partial_usage(self) -> Usage | None:
        return self._latest()

    def _collect(self, event: Event, text: list[str], reasoning: list[str]) -> None:
        for candidate in event.get("candidates") or ():
            for part in child(candidate, "content").get("parts") or ():
                if not isinstance(part, Mapping):
                    continue
                if isinstance(part.get("text"), str):
                    (reasoning if part.get("thought") else text).append(part["text"])
                elif isinstance(part.get("functionCall"), Mapping):
                    call = part["functionCall"]
                    text.append(str(call.get("name") or ""))
                    text.append(orjson.dumps(call.get("args") or {}).decode())
