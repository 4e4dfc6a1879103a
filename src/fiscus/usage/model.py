"""`Usage`: the tokens one call consumed, in one convention whatever the provider reported."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

# Token parts a modality count can belong to, and the modalities billed apart from text.
MODALITY_PARTS = ("input", "cache_read", "output")
MODALITIES = ("audio", "image", "video")


@dataclass(frozen=True, slots=True)
class Iteration:
    """One billed sampling pass inside a call (an Anthropic compaction turn, an advisor sub-inference, the
    message itself). `model` is None when the pass ran on the call's own model."""

    kind: str
    usage: Usage
    model: str | None = None


@dataclass(frozen=True, slots=True)
class UsageDetail:
    """What some calls report beyond the plain token parts; absent (None on `Usage`) for most calls.

    `modalities` are `(part, modality, tokens)`: of `part`'s tokens (input, cache_read, output), how many were
    audio, image or video; they are priced at that modality's rate where the catalogue has one.
    `server_tools` are `(unit, count)` in genai-prices' unit names (`web_searches`, `code_executions`, ...).
    `iterations`, when present, are what was billed: the call's top-level counts are their sum.
    `reported_cost` is the provider's own price of the call (OpenRouter's `usage.cost`), preferred when given.
    `estimate` says how an estimated usage was made (what was counted, with which tokenizer).
    """

    modalities: tuple[tuple[str, str, int], ...] = ()
    server_tools: tuple[tuple[str, int], ...] = ()
    iterations: tuple[Iteration, ...] = ()
    reported_cost: Decimal | None = None
    estimate: str | None = None

    def __add__(self, other: UsageDetail) -> UsageDetail:
        reported = None
        if self.reported_cost is not None or other.reported_cost is not None:
            reported = (self.reported_cost or Decimal(0)) + (other.reported_cost or Decimal(0))
        notes = [note for note in (self.estimate, other.estimate) if note]
        return UsageDetail(
            _summed(self.modalities + other.modalities),
            _summed(self.server_tools + other.server_tools),
            self.iterations + other.iterations,
            reported,
            "; ".join(notes) or None,
        )

    def modality_tokens(self, part: str) -> dict[str, int]:
        return {modality: tokens for p, modality, tokens in self.modalities if p == part and tokens}

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.modalities:
            out["modalities"] = [{"part": p, "modality": m, "tokens": n} for p, m, n in self.modalities]
        if self.server_tools:
            out["server_tools"] = dict(self.server_tools)
        if self.iterations:
            out["iterations"] = [{"kind": it.kind, "model": it.model, **it.usage.to_dict()} for it in self.iterations]
        if self.reported_cost is not None:
            out["reported_cost_usd"] = format(self.reported_cost.normalize(), "f")
        if self.estimate:
            out["estimate"] = self.estimate
        return out


def _summed(items: tuple[tuple[object, ...], ...]) -> tuple:  # type: ignore[type-arg]
    """Counts with the same key (all but the last element) added together, in first-seen order."""
    totals: dict[tuple[object, ...], int] = {}
    for item in items:
        key, value = item[:-1], item[-1]
        totals[key] = totals.get(key, 0) + value  # type: ignore[operator]
    return tuple((*key, value) for key, value in totals.items() if value)


@dataclass(slots=True, unsafe_hash=True)
class Usage:
    """Token counts of one call, normalised. Immutable by convention (derive a changed one with `replace`): one
    is built per call, and a frozen dataclass costs twice as much to build.

    The input side is split into disjoint parts, so their sum is everything the model read:
    `input_tokens` is uncached input only, cache reads and writes are counted apart.
    `output_tokens` includes `reasoning_tokens` (reasoning is billed as output).
    `estimated` marks counts fiscus had to estimate, e.g. a stream cut off before usage arrived.
    `detail` holds modality splits, server-tool counts, billed iterations, a provider-reported cost or how an
    estimate was made (see `UsageDetail`); None for a plain call.
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    detail: UsageDetail | None = None

    def __post_init__(self) -> None:
        # One is built per call: the common case (plain non-negative ints) is checked in one expression.
        i, r, w5, w1, o, z = (
            self.input_tokens,
            self.cache_read_tokens,
            self.cache_write_5m_tokens,
            self.cache_write_1h_tokens,
            self.output_tokens,
            self.reasoning_tokens,
        )
        if (
            type(i) is type(r) is type(w5) is type(w1) is type(o) is type(z) is int
            and i >= 0
            and r >= 0
            and w5 >= 0
            and w1 >= 0
            and 0 <= z <= o
        ):
            return
        for name in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Usage.{name} must be a non-negative integer, got {value!r}")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("Usage.reasoning_tokens is part of output_tokens and cannot exceed it")

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        """Every input token the model read: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.total_input_tokens + self.output_tokens

    @property
    def cache_hit_ratio(self) -> Decimal:
        """Share of the input served from cache, 0 when there was no input."""
        total = self.total_input_tokens
        if total == 0:
            return Decimal(0)
        return Decimal(self.cache_read_tokens) / Decimal(total)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_5m_tokens=self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
            detail=_add_details(self.detail, other.detail),
        )

    def as_estimated(self, how: str | None = None) -> Usage:
        """The same counts flagged as an estimate; `how` says how they were made."""
        if how is None:
            return replace(self, estimated=True)
        detail = replace(self.detail, estimate=how) if self.detail else UsageDetail(estimate=how)
        return replace(self, estimated=True, detail=detail)

    @property
    def estimate_note(self) -> str | None:
        return self.detail.estimate if self.detail is not None else None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "estimated": self.estimated,
        }
        if self.detail is not None:
            out.update(self.detail.to_dict())
        return out

    @classmethod
    def from_dict(cls, data: dict[str, int | bool]) -> Usage:  # the plain counts; `detail` is not read back
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            cache_read_tokens=int(data.get("cache_read_tokens", 0)),
            cache_write_5m_tokens=int(data.get("cache_write_5m_tokens", 0)),
            cache_write_1h_tokens=int(data.get("cache_write_1h_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            reasoning_tokens=int(data.get("reasoning_tokens", 0)),
            estimated=bool(data.get("estimated", False)),
        )


def _add_details(a: UsageDetail | None, b: UsageDetail | None) -> UsageDetail | None:
    if a is None:
        return b
    return a if b is None else a + b
