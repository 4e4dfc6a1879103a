"""Rolling summarisation: a conversation's older turns replaced by a summary the family's cheapest model writes.

Pure: `plan_summary` says which turns have aged out (all but the newest `keep_last` groups, counted in steps of
`refresh_every`, so the summary — and the prompt prefix a provider caches — changes only when that many more
groups have aged out); `summary_request` is the one call that writes the summary, in the conversation's own
wire format; `summary_text` reads its answer; `summarised` puts the summary in place of the aged turns. A door
makes the call, prices and records it as an event of its own, and keeps the summary per session
(`SummaryCache`), so a conversation pays for each summary once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fiscus.policy.types import SummaryRule
from fiscus.shaping.conversation import shape_of
from fiscus.usage.wire import WireFormat

INSTRUCTIONS = (
    "Summarise the conversation below for the assistant that continues it. Keep every fact, figure, name, "
    "decision, open question and tool result it will still need; drop pleasantries and repetition. Answer with "
    "the summary only."
)


def summary_marker(count: int) -> str:
    return f"[fiscus: summary of {count} earlier messages]"


@dataclass(frozen=True, slots=True)
class SummaryPlan:
    lead: int  # system items kept in front
    aged: int  # the items after them replaced by the summary
    transcript: str  # the aged items as text: what the summary model reads
    key: str  # a hash of the aged items: the same aged turns get the same summary


def plan_summary(body: Mapping[str, Any], fmt: WireFormat, rule: SummaryRule) -> SummaryPlan | None:
    """The turns of `body` that have aged out under `rule`, or None when none has."""
    shape = shape_of(fmt)
    items = body.get(shape.key)
    if not isinstance(items, list):
        return None
    lead = 0
    while lead < len(items) and shape.is_system(items[lead]):
        lead += 1
    groups = shape.groups(items[lead:], lead)
    aged_groups = (len(groups) - rule.keep_last) // rule.refresh_every * rule.refresh_every
    if aged_groups <= 0:
        return None
    aged = sum(len(group) for group in groups[:aged_groups])
    old = items[lead : lead + aged]
    try:
        key = hashlib.sha256(orjson.dumps(old)).hexdigest()
    except TypeError:  # not plain JSON data: leave the request alone
        return None
    transcript = "\n\n".join(_item_text(item) for item in old)
    return SummaryPlan(lead, aged, transcript, key)


def summary_request(plan: SummaryPlan, fmt: WireFormat, model: str, max_tokens: int) -> dict[str, Any]:
    """The body of the call that writes the summary, in `fmt`."""
    if fmt is WireFormat.ANTHROPIC:
        messages = [{"role": "user", "content": plan.transcript}]
        return {"model": model, "max_tokens": max_tokens, "system": INSTRUCTIONS, "messages": messages}
    if fmt is WireFormat.OPENAI_RESPONSES:
        return {"model": model, "instructions": INSTRUCTIONS, "input": plan.transcript, "max_output_tokens": max_tokens}
    if fmt is WireFormat.GEMINI:
        return {
            "systemInstruction": {"parts": [{"text": INSTRUCTIONS}]},
            "contents": [{"role": "user", "parts": [{"text": plan.transcript}]}],
            "generationConfig": {"maxOutputTokens": max_tokens},
        }
    messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": plan.transcript}]
    return {"model": model, "max_completion_tokens": max_tokens, "messages": messages}


def summary_text(answer: Any, fmt: WireFormat) -> str | None:
    """The summary in a provider's answer, or None when it holds no text."""
    if not isinstance(answer, Mapping):
        return None
    texts: list[str] = []
    if fmt is WireFormat.ANTHROPIC:
        texts = [b.get("text", "") for b in answer.get("content") or [] if isinstance(b, Mapping)]
    elif fmt is WireFormat.OPENAI_RESPONSES:
        for item in answer.get("output") or []:
            for part in item.get("content") or [] if isinstance(item, Mapping) else []:
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
    elif fmt is WireFormat.GEMINI:
        for candidate in (answer.get("candidates") or [])[:1]:
            parts = (candidate.get("content") or {}).get("parts") or []
            texts = [str(p.get("text", "")) for p in parts if isinstance(p, Mapping)]
    else:
        choices = answer.get("choices") or [{}]
        texts = [str((choices[0].get("message") or {}).get("content") or "")]
    text = "".join(t for t in texts if isinstance(t, str)).strip()
    return text or None


def summarised(body: Mapping[str, Any], fmt: WireFormat, plan: SummaryPlan, text: str) -> dict[str, Any]:
    """`body` with its aged turns replaced by one message carrying the summary (the input is not changed)."""
    shape = shape_of(fmt)
    items = body[shape.key]
    marker = shape.marker(f"{summary_marker(plan.aged)}\n{text}")
    return {**body, shape.key: [*items[: plan.lead], marker, *items[plan.lead + plan.aged :]]}


class SummaryCache:
    """Summaries per (session, aged turns), least recently used dropped first; safe across threads."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str, key: str) -> str | None:
        with self._lock:
            text = self._entries.get((session, key))
            if text is not None:
                self._entries.move_to_end((session, key))
            return text

    def put(self, session: str, key: str, text: str) -> None:
        with self._lock:
            self._entries[(session, key)] = text
            self._entries.move_to_end((session, key))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)


def _item_text(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    role = str(item.get("role") or item.get("type") or "item")
    if item.get("type") == "function_call":
        return f"{role}: {item.get('name')}({item.get('arguments')})"
    if item.get("type") == "function_call_output":
        return f"tool result: {_content_text(item.get('output'))}"
    parts = item.get("content") if "content" in item else item.get("parts")
    text = _content_text(parts)
    if item.get("tool_calls"):
        text += " " + orjson.dumps(item["tool_calls"]).decode()
    return f"{role}: {text}".rstrip()


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return orjson.dumps(content, default=str).decode()
    pieces = []
    for part in content:
        if isinstance(part, str):
            pieces.append(part)
        elif not isinstance(part, Mapping):
            continue
        elif isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif part.get("type") == "tool_result":
            pieces.append("tool result: " + _content_text(part.get("content")))
        elif part.get("type") == "tool_use":
            pieces.append(f"tool call {part.get('name')}: " + orjson.dumps(part.get("input")).decode())
        else:
            kept = {k: v for k, v in part.items() if k not in ("type", "id", "cache_control")}
            pieces.append(orjson.dumps(kept, default=str).decode())
    return "\n".join(pieces)
