"""Loop detection over an agent's steps. Pure: no clock, no I/O; the SDK and the gateway feed it facts.

Five checks, each cheap enough to run on every call:
- the same tool call (name + canonical JSON arguments) `repeat_tool_calls` times in the last `repeat_window` steps;
- `near_duplicate_run` consecutive requests whose last user/tool content is alike (MinHash estimate of the
  Jaccard similarity of normalised shingles, `fiscus.guards.similarity`, so a reworded repeat still counts);
- a step limit per session;
- ping-pong: two agents handing alike messages back and forth (A→B→A→B…), each reworded or not;
- no progress: `no_progress_steps` answers in a row that brought nothing new (no tool result, input turn,
  output text or tool call unlike the recent ones). Progress is judged by novelty, not tokens: a research
  agent whose context grows 20k tokens a step is making progress as long as its tool results are new.
  `no_progress_tokens` (off by default) adds a token ceiling on the same novelty clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fiscus.errors import ConfigError
from fiscus.guards.similarity import Sketch, cached_sketch, estimate

ACTIONS = ("warn", "stop", "raise")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """Thresholds of the loop checks; `None` turns a check off. `action` is what a detection leads to:
    warn (log and go on), stop (answer with a partial result), raise (`LoopDetectedError`)."""

    repeat_tool_calls: int | None = 3
    repeat_window: int = 5
    similarity: float = 0.6
    near_duplicate_run: int | None = 3
    max_steps: int | None = None
    ping_pong_rounds: int | None = 2
    no_progress_steps: int | None = 8
    no_progress_tokens: int | None = None
    action: str = "stop"
    # The gateway checks calls that carry no session too, as one conversation per key + agent + stable prefix.
    implicit_conversations: bool = True

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"loop action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not 0.0 < self.similarity <= 1.0:
            raise ConfigError(f"loop similarity must be in (0, 1], got {self.similarity}")
        if self.repeat_tool_calls is not None and self.repeat_tool_calls > self.repeat_window:
            raise ConfigError("loop repeat_tool_calls cannot exceed repeat_window")
        if self.no_progress_steps is not None and self.no_progress_steps < 1:
            raise ConfigError(f"loop no_progress_steps must be at least 1, got {self.no_progress_steps}")


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


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def similarity(a: str, b: str) -> float:
    """Plain token-set Jaccard similarity in [0, 1]; identical strings (and two empty ones) score 1. The
    detector compares MinHash sketches instead (`fiscus.guards.similarity`)."""
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
    """Watches one conversation (a session tree, or the implicit conversation the gateway derives). Call
    `before_call` with the request about to be sent and `after_call` with what came back; each returns a
    `Detection` or `None`. A detection repeats on later calls while it holds."""

    NOVELTY_MEMORY = 64  # sketches of recent outputs and tool results a new one is compared with
    SEEN_MEMORY = 1_024  # digests of recent texts, for exact repeats: bounded, so the state can be shared

    def __init__(self, config: LoopConfig | None = None) -> None:
        self.config = config or LoopConfig()
        self.steps = 0
        self._tool_calls: deque[tuple[str, ...]] = deque(maxlen=self.config.repeat_window)
        self._recent_inputs: deque[str] = deque(maxlen=max(self.config.near_duplicate_run or 1, 1))
        self._last_sketch: Sketch | None = None  # of `_recent_inputs[-1]`
        self._exchange: deque[tuple[str, str, Sketch]] = deque(maxlen=2 * max(self.config.ping_pong_rounds or 1, 1))
        self._scores: deque[float] = deque(maxlen=max((self.config.near_duplicate_run or 2) - 1, 1))
        # Exact repeats by a stable digest (the same in every process, so the state can move), rewordings by sketch.
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._seen_sketches: deque[Sketch] = deque(maxlen=self.NOVELTY_MEMORY)
        self._tokens_since_progress = 0
        self._steps_since_progress = 0
        self._novel = False  # whether the current step brought anything new so far

    def before_call(self, *, agent: str | None, content: str, tool_results: Iterable[str] = ()) -> Detection | None:
        """A request is about to go out. `content` is its last user/tool text; `tool_results` its tool outputs."""
        cfg = self.config
        self.steps += 1
        for result in tool_results:
            self._progress(result)
        self._progress(content)  # new findings handed in as a user turn are progress too; a rewording is not
        if cfg.max_steps is not None and self.steps > cfg.max_steps:
            return Detection(
                "step_limit",
                f"step {self.steps} is past the session's limit of {cfg.max_steps} steps",
                {"steps": self.steps, "max_steps": cfg.max_steps},
            )
        needs_sketch = cfg.near_duplicate_run is not None or (agent is not None and cfg.ping_pong_rounds is not None)
        now = cached_sketch(content) if needs_sketch else None
        previous, self._last_sketch = self._last_sketch, now
        self._recent_inputs.append(content)
        if now is not None and previous is not None:
            found = self._near_duplicates(estimate(previous, now))
            if found is not None:
                return found
        if agent is not None and now is not None:
            return self.exchanged(agent, content, now)
        return None

    def exchanged(self, agent: str, content: str, shape: Sketch | None = None) -> Detection | None:
        """One agent's message in an exchange between agents; the ping-pong check over the recent ones.
        Consecutive messages of one agent are one turn: its latest message stands for it."""
        if self.config.ping_pong_rounds is None:
            return None
        shape = shape if shape is not None else cached_sketch(content)
        exchange = self._exchange
        if exchange and exchange[-1][0] == agent:
            exchange.pop()
        exchange.append((agent, content, shape))
        return self._ping_pong()

    def after_call(
        self, *, tool_calls: Iterable[tuple[str, str | dict[str, Any] | None]] = (), output: str = "", tokens: int = 0
    ) -> Detection | None:
        """A response came back: its tool calls (name, arguments), its text and the tokens the call used."""
        cfg = self.config
        calls = tuple(canonical_tool_call(name, args) for name, args in tool_calls) if tool_calls else ()
        for call in calls:
            self._progress(call, reworded=False)
        self._tool_calls.append(calls)
        if output:
            self._progress(output)
        self._tokens_since_progress += tokens
        self._steps_since_progress = 0 if self._novel else self._steps_since_progress + 1
        self._novel = False
        # A tool called again while its results keep being new is polling that makes progress, not a loop.
        if cfg.repeat_tool_calls is not None and calls and self._steps_since_progress > 0:
            for call in set(calls):
                count = sum(call in step for step in self._tool_calls)
                if count >= cfg.repeat_tool_calls:
                    return Detection(
                        "repeated_tool_call",
                        f"tool call {call[:120]} made {count} times in the last {len(self._tool_calls)} steps",
                        {"tool_call": call, "count": count, "window": cfg.repeat_window},
                    )
        if cfg.no_progress_steps is not None and self._steps_since_progress >= cfg.no_progress_steps:
            return Detection(
                "no_progress",
                f"{self._steps_since_progress} answers in a row brought no new tool result, output or tool call",
                {"steps": self._steps_since_progress, "limit": cfg.no_progress_steps},
            )
        if cfg.no_progress_tokens is not None and self._tokens_since_progress >= cfg.no_progress_tokens:
            return Detection(
                "spend_without_progress",
                f"{self._tokens_since_progress} tokens spent with no new tool result or output",
                {"tokens": self._tokens_since_progress, "limit": cfg.no_progress_tokens},
            )
        return None

    def _progress(self, text: str, *, reworded: bool = True) -> None:
        """Whether `text` is new: not seen verbatim, and (for prose) not a rewording of a recent one."""
        if not text:
            return
        key = _digest(text)
        if key in self._seen:
            return
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > self.SEEN_MEMORY:
            self._seen.discard(self._seen_order.popleft())
        if reworded:
            shape = cached_sketch(text, numbers=False)
            if any(estimate(shape, seen) >= self.config.similarity for seen in self._seen_sketches):
                return
            self._seen_sketches.append(shape)
        self._novel = True
        self._tokens_since_progress = 0

    def _near_duplicates(self, score: float) -> Detection | None:
        """`score`: the similarity of this request to the one before. One comparison per call: the run of
        alike requests grows or restarts."""
        run = self.config.near_duplicate_run
        if run is None or run < 2:
            return None
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
            f"{run} consecutive requests are alike (similarity ≥ {self.config.similarity})",
            {"run": run, "similarities": [round(s, 4) for s in scores], "content": items[-1][:200]},
        )

    def _ping_pong(self) -> Detection | None:
        rounds = self.config.ping_pong_rounds
        exchange = self._exchange
        if rounds is None or len(exchange) < 2 * rounds:
            return None
        items = list(exchange)
        a, b = items[0][0], items[1][0]
        if a == b or any(agent != (a if i % 2 == 0 else b) for i, (agent, _, _) in enumerate(items)):
            return None
        scores = [estimate(items[i][2], items[i + 2][2]) for i in range(len(items) - 2)]
        if min(scores) < self.config.similarity:
            return None
        return Detection(
            "ping_pong",
            f"agents {a} and {b} exchanged near-identical messages {rounds} times over",
            {"agents": [a, b], "rounds": rounds, "similarities": [round(s, 4) for s in scores]},
        )

    def state(self) -> dict[str, Any]:
        """The whole state as JSON-safe data (sketches as their hashes), for `restore` in another process."""
        return {
            "steps": self.steps,
            "tool_calls": [list(step) for step in self._tool_calls],
            "inputs": [text[:500] for text in self._recent_inputs],  # only their heads are ever shown
            "last": None if self._last_sketch is None else list(self._last_sketch.hashes),
            "exchange": [[agent, text[:500], list(shape.hashes)] for agent, text, shape in self._exchange],
            "scores": list(self._scores),
            "seen": list(self._seen_order),
            "seen_sketches": [list(shape.hashes) for shape in self._seen_sketches],
            "tokens": self._tokens_since_progress,
            "idle": self._steps_since_progress,
            "novel": self._novel,
        }

    @classmethod
    def restore(cls, config: LoopConfig, state: dict[str, Any]) -> LoopDetector:
        """A detector that goes on exactly where the one whose `state()` this is stopped."""
        found = cls(config)
        found.steps = int(state["steps"])
        found._tool_calls.extend(tuple(step) for step in state["tool_calls"])
        found._recent_inputs.extend(state["inputs"])
        found._last_sketch = None if state["last"] is None else Sketch(tuple(state["last"]))
        found._exchange.extend((agent, text, Sketch(tuple(shape))) for agent, text, shape in state["exchange"])
        found._scores.extend(state["scores"])
        found._seen_order.extend(state["seen"])
        found._seen.update(found._seen_order)
        found._seen_sketches.extend(Sketch(tuple(shape)) for shape in state["seen_sketches"])
        found._tokens_since_progress = int(state["tokens"])
        found._steps_since_progress = int(state["idle"])
        found._novel = bool(state["novel"])
        return found

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state, for a post-mortem."""
        return {
            "steps": self.steps,
            "recent_tool_calls": [list(step) for step in self._tool_calls],
            "recent_inputs": [text[:500] for text in self._recent_inputs],
            "exchange": [[agent, text[:500]] for agent, text, _ in self._exchange],
            "tokens_since_progress": self._tokens_since_progress,
            "steps_since_progress": self._steps_since_progress,
        }
