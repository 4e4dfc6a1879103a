"""A batch's results, whatever the provider's format: one `ResultLine` per request — succeeded (with the answer,
whose usage is priced), errored, expired or canceled (with why).

OpenAI writes them to an output file (answers, and requests the endpoint refused) and an error file (requests
that never ran); Anthropic streams one result per request. Both are JSON lines; a line that is not a JSON object
is skipped, so its request counts as not run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger("fiscus.batches")


@dataclass(frozen=True, slots=True)
class ResultLine:
    custom_id: str
    outcome: str  # succeeded | errored | expired | canceled
    body: dict[str, Any] | None = None  # the answer of a request that succeeded
    error: str | None = None


def json_lines(content: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file."""
    out = []
    for text in content.splitlines():
        try:
            item = orjson.loads(text) if text.strip() else None
        except orjson.JSONDecodeError:
            log.warning("skipped a batch result line that is not JSON")
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def openai_results(lines: Iterable[dict[str, Any]], into: dict[str, ResultLine]) -> None:
    """Add the results of an OpenAI output or error file's lines to `into`, by custom_id."""
    for line in lines:
        custom_id, response, error = str(line.get("custom_id")), line.get("response"), line.get("error") or {}
        if isinstance(response, dict) and response.get("status_code") == 200:
            into[custom_id] = ResultLine(custom_id, "succeeded", response.get("body"))
        elif isinstance(response, dict):
            message = ((response.get("body") or {}).get("error") or {}).get("message", "")
            into[custom_id] = ResultLine(custom_id, "errored", error=f"{response.get('status_code')}: {message}")
        else:
            code = error.get("code", "")
            outcome = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(code, "errored")
            into[custom_id] = ResultLine(custom_id, outcome, error=f"{code}: {error.get('message', '')}")


def anthropic_results(lines: Iterable[dict[str, Any]]) -> dict[str, ResultLine]:
    """The results of an Anthropic Message Batch, by custom_id."""
    out: dict[str, ResultLine] = {}
    for line in lines:
        custom_id, result = str(line.get("custom_id")), line.get("result") or {}
        kind = str(result.get("type", "errored"))
        if kind == "succeeded":
            out[custom_id] = ResultLine(custom_id, kind, result.get("message"))
        else:
            error = ((result.get("error") or {}).get("error") or {}).get("message")
            out[custom_id] = ResultLine(
                custom_id, kind, error=f"batch request {kind}" + (f": {error}" if error else "")
            )
    return out
