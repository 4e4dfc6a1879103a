"""Loop detection over an agent's steps. Pure: no clock, no I/O; the SDK and the gateway feed it facts.

Five checks, each cheap enough to run on every call:
- the same tool call (name + canonical JSON arguments) `repeat_tool_calls` times in the last `repeat_window` steps;
- `near_duplicate_run` consecutive requests whose last user/tool content is near-identical (token-set Jaccard);
- a step limit per session;
- ping-pong: two agents handing near-identical messages back and forth (A→B→A→B…);
- spend without progress: `no_progress_tokens` tokens with no new tool result and no new output content.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fiscus.errors import ConfigError

ACTIONS = ("warn", "stop", "raise")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """Thresholds of the loop checks; `None` turns a check off. `action` is what a detection leads to:
    warn (log and go on), stop (answer with a partial result), raise (`LoopDetectedError`)."""

    repeat_tool_calls: int | None = 3
    repeat_window: int = 5
    similarity: float = 0.95
    near_duplicate_run: int | None = 3
    max_steps: int | None = None
    ping_pong_rounds: int | None = 2
    no_progress_tokens: int | None = 200_000
    action: str = "stop"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"loop action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not 0.0 < self.similarity <= 1.0:
            raise ConfigError(f"loop similarity must be in (0, 1], got {self.similarity}")
        if self.repeat_tool_calls is not None and self.repeat_tool_calls > self.repeat_window:
            raise ConfigError("loop repeat_tool_calls cannot exceed repeat_window")


@dataclass(frozen=True, slots=True)
class Detection:
    """What a check found: its `kind`, a one-line `message` and JSON-safe `evidence`."""

    kind: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


def canonical_tool_call(name: str, arguments: str | dict[str, Any] | None) -> str:
    """`name(args)` with the arguments as sorted, compact JSON, so key order and spacing do not matter."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return f"{name}({arguments.strip()})"
    return f"{name}({json.dumps(arguments or {}, sort_keys=True, separators=(',', ':'), ensure_ascii=False)})"


def similarity(a: str, b: str) -> float:
    """Token-set Jaccard similarity in [0, 1]; identical strings (and two empty ones) score 1."""
    if a == b:
        return 1.0
    return _jaccard(_words(a), _words(b))


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _jaccard(sa: frozenset[str], sb: frozenset[str]) -> float:
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


class LoopDetector:
    """Watches one session tree. Call `before_call` with the request about to be sent and `after_call` with
    what came back; each returns a `Detection` or `None`. A detection repeats on later calls while it holds."""

    def __init__(self, config: LoopConfig | None = None) -> None:
        self.config = config or LoopConfig()
        self.steps = 0
        self._tool_calls: deque[tuple[str, ...]] = deque(maxlen=self.config.repeat_window)
        self._recent_inputs: deque[str] = deque(maxlen=max(self.config.near_duplicate_run or 1, 1))
        self._last_words: frozenset[str] | None = None  # word set of `_recent_inputs[-1]`, once computed
        self._exchange: deque[tuple[str, str]] = deque(maxlen=2 * max(self.config.ping_pong_rounds or 1, 1))
        self._scores: deque[float] = deque(maxlen=max((self.config.near_duplicate_run or 2) - 1, 1))
        # Outputs and tool results seen, by `hash()`: this process's memory only, never compared across processes.
        self._seen: set[int] = set()
        self._tokens_since_progress = 0

    def before_call(self, *, agent: str | None, content: str, tool_results: Iterable[str] = ()) -> Detection | None:
        """A request is about to go out. `content` is its last user/tool text; `tool_results` its tool outputs."""
        cfg = self.config
        self.steps += 1
        for result in tool_results:
            self._progress(result)
        if cfg.max_steps is not None and self.steps > cfg.max_steps:
            return Detection(
                "step_limit",
                f"step {self.steps} is past the session's limit of {cfg.max_steps} steps",
                {"steps": self.steps, "max_steps": cfg.max_steps},
            )
        previous = self._last_words
        self._last_words = None
        self._recent_inputs.append(content)
        found = self._near_duplicates(previous)
        if found is not None:
            return found
        if agent is not None:
            if not self._exchange or self._exchange[-1][0] != agent or self._exchange[-1][1] != content:
                self._exchange.append((agent, content))
            found = self._ping_pong()
            if found is not None:
                return found
        return None

    def after_call(
        self, *, tool_calls: Iterable[tuple[str, str | dict[str, Any] | None]] = (), output: str = "", tokens: int = 0
    ) -> Detection | None:
        """A response came back: its tool calls (name, arguments), its text and the tokens the call used."""
        cfg = self.config
        calls = tuple(canonical_tool_call(name, args) for name, args in tool_calls) if tool_calls else ()
        self._tool_calls.append(calls)
        if output:
            self._progress(output)
        self._tokens_since_progress += tokens
        if cfg.repeat_tool_calls is not None and calls:
            for call in set(calls):
                count = sum(call in step for step in self._tool_calls)
                if count >= cfg.repeat_tool_calls:
                    return Detection(
                        "repeated_tool_call",
                        f"tool call {call[:120]} made {count} times in the last {len(self._tool_calls)} steps",
                        {"tool_call": call, "count": count, "window": cfg.repeat_window},
                    )
        if cfg.no_progress_tokens is not None and self._tokens_since_progress >= cfg.no_progress_tokens:
            return Detection(
                "spend_without_progress",
                f"{self._tokens_since_progress} tokens spent with no new tool result or output",
                {"tokens": self._tokens_since_progress, "limit": cfg.no_progress_tokens},
            )
        return None

    def _progress(self, text: str) -> None:
        if not text:
            return
        key = hash(text)
        if key not in self._seen:
            self._seen.add(key)
            self._tokens_since_progress = 0

    def _near_duplicates(self, previous: frozenset[str] | None) -> Detection | None:
        """`previous`: the word set of the request before this one, when it was computed."""
        run = self.config.near_duplicate_run
        if run is None or run < 2 or len(self._recent_inputs) < 2:
            return None
        # One comparison per call: the run of near-identical requests grows or restarts. Each request's word
        # set is computed once and kept for the comparison with the next one.
        before, now = self._recent_inputs[-2], self._recent_inputs[-1]
        if before == now:
            score = 1.0
            self._last_words = previous
        else:
            words = self._last_words = _words(now)
            score = _jaccard(previous if previous is not None else _words(before), words)
        self._scores.append(score)
        if score < self.config.similarity:
            self._scores.clear()
            return None
        if len(self._scores) < run - 1:
            return None
        items = list(self._recent_inputs)
        scores = list(self._scores)[-(run - 1) :]
        return Detection(
            "near_duplicate_request",
            f"{run} consecutive requests are near-identical (similarity ≥ {self.config.similarity})",
            {"run": run, "similarities": [round(s, 4) for s in scores], "content": items[-1][:200]},
        )

    def _ping_pong(self) -> Detection | None:
        rounds = self.config.ping_pong_rounds
        exchange = self._exchange
        if rounds is None or len(exchange) < 2 * rounds or exchange[0][0] == exchange[1][0]:
            return None  # (the last: one agent talking to itself, the common case, is no ping-pong)
        items = list(exchange)
        a, b = items[0][0], items[1][0]
        if a == b or any(agent != (a if i % 2 == 0 else b) for i, (agent, _) in enumerate(items)):
            return None
        scores = [similarity(items[i][1], items[i + 2][1]) for i in range(len(items) - 2)]
        if min(scores) < self.config.similarity:
            return None
        return Detection(
            "ping_pong",
            f"agents {a} and {b} exchanged near-identical messages {rounds} times over",
            {"agents": [a, b], "rounds": rounds, "similarities": [round(s, 4) for s in scores]},
        )

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state, for a post-mortem."""
        return {
            "steps": self.steps,
            "recent_tool_calls": [list(step) for step in self._tool_calls],
            "recent_inputs": [text[:500] for text in self._recent_inputs],
            "exchange": [[agent, text[:500]] for agent, text in self._exchange],
            "tokens_since_progress": self._tokens_since_progress,
        }
