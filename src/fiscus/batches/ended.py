"""Whether a batch the provider describes has ended, what to read to settle it, and its results once read:
the same answers for the gateway's poll, a wrapped client's retrieve or cancel, and `fiscus batches settle`.

OpenAI: a batch ended when its status is completed, expired, cancelled or failed; its results are in its output
and error files (either may be absent). Anthropic: when its processing_status is ended; its results are one
stream. A cancelled batch can still hold results for the requests that ran before it stopped: those are priced,
the rest recorded as not run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fiscus.batches.lines import OPENAI_ENDPOINTS
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import ResultLine, anthropic_results, openai_results
from fiscus.usage.wire import WireFormat

OPENAI_ENDED = ("completed", "expired", "cancelled", "failed")


def has_ended(record: BatchRecord, batch: dict[str, Any]) -> bool:
    """Whether the provider's description of `record`'s batch says it ended."""
    if record.wire == "openai":
        return batch.get("status") in OPENAI_ENDED
    return batch.get("processing_status") == "ended"


def to_read(record: BatchRecord, batch: dict[str, Any]) -> list[str]:
    """What holds an ended batch's results: its output and error file ids (OpenAI), or the batch id (Anthropic)."""
    if record.wire == "openai":
        return [str(batch[name]) for name in ("output_file_id", "error_file_id") if batch.get(name)]
    return [record.id]


def read_results(
    record: BatchRecord, batch: dict[str, Any], read: Iterable[Iterable[dict[str, Any]]]
) -> tuple[dict[str, ResultLine], WireFormat, str]:
    """The results of what `to_read` named, each read as its JSON-lines objects: (results by custom_id, the
    answers' format, why a request they omit did not run)."""
    if record.wire == "openai":
        results: dict[str, ResultLine] = {}
        for lines in read:
            openai_results(lines, results)
        fmt = OPENAI_ENDPOINTS.get(record.endpoint, WireFormat.OPENAI_CHAT)
        return results, fmt, f"not run: the batch {batch.get('status')}"
    merged: dict[str, ResultLine] = {}
    for lines in read:
        merged.update(anthropic_results(lines))
    return merged, WireFormat.ANTHROPIC, "no result for this request"
