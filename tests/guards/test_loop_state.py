"""Loop state shared by workers: detectors whose calls are served by several workers (memory, SQLite, Redis)
decide exactly as one detector fed every call; a stopped conversation is refused by every worker; idle state
expires; no prompt text reaches the store unless the operator opts in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fiscus.attribution import Attribution
from fiscus.gateway.guards import GatewayGuards
from fiscus.guards import BreakerRegistry, Detection, LoopConfig, LoopDetector
from fiscus.guards.loop_state import Conversation, LoopStates, LoopStateStore, MemoryLoopState, open_loop_state
from fiscus.usage.wire import WireFormat
from tests.guards.test_loop_novelty import ASK_A, ASK_B

Step = Callable[[LoopDetector], Detection | None]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/breakers.db"
    else:
        yield f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


def _stores(url: str, n: int) -> list[LoopStateStore]:
    if url == "memory://":
        return [MemoryLoopState()] * n  # one instance: the memory store is one process's
    return [open_loop_state(url) for _ in range(n)]


def _research_step(step: int) -> list[Step]:
    result = " ".join(f"carrier-{step}-{i} volume {step * 1000 + i}" for i in range(600))
    return [
        lambda d: d.after_call(tool_calls=[("search", {"q": "parcel market"})], output=f"Noted {step}.", tokens=20_000),
        lambda d: d.before_call(agent="researcher", content=f"Search result {step}: {result}", tool_results=[result]),
    ]


def _stuck_step(step: int) -> list[Step]:  # the same empty answer, reworded asks, the same tool call
    ask = ASK_B[step % 4]
    return [
        lambda d: d.after_call(tool_calls=[("lookup", {"order": 7})], output="No rows found.", tokens=900),
        lambda d: d.before_call(agent="writer", content=ask),
    ]


def _ping_pong_step(step: int) -> list[Step]:
    return [lambda d: d.exchanged("writer", ASK_B[step % 4]), lambda d: d.exchanged("critic", ASK_A[step % 4])]


def _verdicts(found: list[Detection | None]) -> list[tuple[str, str, dict[str, Any]] | None]:
    return [None if f is None else (f.kind, f.message, f.evidence) for f in found]


@pytest.mark.parametrize("story", [_research_step, _stuck_step, _ping_pong_step])
def test_workers_sharing_a_conversation_decide_as_one_detector(
    store_url: str, story: Callable[[int], list[Step]]
) -> None:
    config = LoopConfig(action="warn")  # go on after a detection: every later verdict is compared too
    steps = [s for n in range(12) for s in story(n)]
    alone = LoopDetector(config)
    expected = [step(alone) for step in steps]
    workers = [LoopStates(config, store) for store in _stores(store_url, 4)]
    try:
        got = [workers[i % 4].run("s:run-1", lambda c, step=step: step(c.detector)) for i, step in enumerate(steps)]
        # Two workers in a row on the same stale copy: the second's swap finds the newer record and reruns.
        got.append(workers[0].run("s:run-1", lambda c: c.detector.exchanged("writer", ASK_B[0])))
        got.append(workers[0].run("s:run-1", lambda c: c.detector.exchanged("critic", ASK_A[0])))
        expected += [alone.exchanged("writer", ASK_B[0]), alone.exchanged("critic", ASK_A[0])]
        final = workers[3].run("s:run-1", lambda c: c.detector.state())
    finally:
        for worker in workers:
            worker.close()
    assert _verdicts(got) == _verdicts(expected)
    assert any(expected) is (story is not _research_step)  # the stories are what they claim
    assert final["steps"] == alone.steps and final["idle"] == alone.state()["idle"]


def test_a_conversation_stopped_in_one_worker_is_refused_by_every_worker(store_url: str) -> None:
    stores = _stores(store_url, 3)
    workers = [GatewayGuards(BreakerRegistry(), loop_states=LoopStates(LoopConfig(), s)) for s in stores]
    who = Attribution(agent="writer", api_key="key-1", session="thread-9")
    answers = []
    try:
        for i in range(6):  # the same tool call answered "no rows" every step, one worker after another
            body = {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "user", "content": "Find order 7."},
                    {"role": "assistant", "tool_calls": [_call("lookup", '{"order": 7}')]},
                    {"role": "tool", "tool_call_id": "c1", "content": f"No rows (attempt {i})."},
                ],
            }
            answers.append(workers[i % 3].check(who, WireFormat.OPENAI_CHAT, body))
        first = next(i for i, a in enumerate(answers) if a is not None)
        assert first < 4 and answers[first].code == "loop_detected"  # type: ignore[union-attr]
        later = [
            w.check(who, WireFormat.OPENAI_CHAT, {"messages": [{"role": "user", "content": "new"}]}) for w in workers
        ]
    finally:
        for worker in workers:
            worker.loop_states.close()
    assert all(a is not None and a.message == answers[first].message for a in answers[first:] + later)  # type: ignore[union-attr]


def _call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_idle_conversations_vanish_after_their_ttl() -> None:
    now = [1_000.0]
    states = LoopStates(LoopConfig(), MemoryLoopState(clock=lambda: now[0]), ttl_s=60)
    other = LoopStates(LoopConfig(), states.store, ttl_s=60)

    def stop(c: Conversation) -> None:
        c.stopped = "stopped"

    states.run("s:a", stop)
    assert other.run("s:a", lambda c: c.stopped) == "stopped"
    now[0] += 61
    assert other.run("s:a", lambda c: c.stopped) is None  # expired: a fresh conversation


def test_redis_records_expire(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = open_loop_state(f"{redis_url}?prefix={redis_prefix}")
    states = LoopStates(LoopConfig(), store, ttl_s=30)
    try:
        states.run("s:a", lambda c: c.detector.exchanged("a", "hello"))
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"*{redis_prefix}*:ls:*"))
        assert len(keys) == 1 and 0 < client.pttl(keys[0]) <= 30_000
        client.close()
    finally:
        states.close()


@pytest.mark.parametrize("keep_text", [False, True])
def test_no_prompt_text_in_the_store_unless_opted_in(tmp_path: Path, keep_text: bool) -> None:
    url = f"sqlite:///{tmp_path}/breakers.db"
    states = LoopStates(LoopConfig(), open_loop_state(url), keep_text=keep_text)
    secret = "Please wire the payroll of ACME-SECRET-4411 to the new account"
    try:
        states.run("s:a", lambda c: c.detector.before_call(agent="a", content=secret))
        states.run("s:a", lambda c: c.detector.before_call(agent="a", content=secret + " now"))
    finally:
        states.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("breakers.db*"))
    assert (b"ACME-SECRET-4411" in raw) is keep_text


def test_a_failing_store_judges_on_the_workers_copy() -> None:
    class Down(LoopStateStore):
        def swap(self, records: list[tuple[str, int, bytes]], ttl_s: float) -> None:
            from fiscus.errors import StoreError

            raise StoreError("redis at nowhere: connection refused")

    states = LoopStates(LoopConfig(), Down())
    found = [
        states.run("x:k", lambda c, i=i: c.detector.exchanged("ab"[i % 2], (ASK_B + ASK_A)[i % 8])) for i in range(8)
    ]
    assert any(f is not None and f.kind == "ping_pong" for f in found)


def test_a_conversation_and_its_exchange_are_swapped_together_or_not_at_all(store_url: str) -> None:
    first, second = (LoopStates(LoopConfig(), store) for store in _stores(store_url, 2))
    try:
        first.run_all(["s:a", "x:k"], lambda held: [c.detector.exchanged("writer", ASK_B[0]) for c in held])
        second.run("x:k", lambda c: c.detector.exchanged("critic", ASK_A[0]))  # first's copy of x:k is stale now
        runs: list[int] = []

        def step(held: list[Conversation]) -> list[int]:
            runs.append(1)
            return [c.detector.steps + len(c.detector.state()["exchange"]) for c in held]

        seen = first.run_all(["s:a", "x:k"], step)
        assert len(runs) == 2 and seen == [1, 2]  # rerun on the newer exchange; s:a kept as it was
        assert second.run("s:a", lambda c: len(c.detector.state()["exchange"])) == 1
    finally:
        first.close()
        second.close()


def _tokens_story(workers: list[GatewayGuards]) -> int | None:
    """Calls answered alike, each settled at 20k tokens on the worker that served it: the call the token
    ceiling (50k with no progress) stops, numbered from 1."""
    from decimal import Decimal

    from fiscus.events.cost_event import CostEvent
    from fiscus.pricing.cost import Cost
    from fiscus.usage.model import Usage

    who = Attribution(agent="scout", api_key="key-2", session="t-1")
    for n in range(1, 9):
        messages = [{"role": "user", "content": "Any news on the Leeds depot?"}]
        if n > 1:
            messages = [*messages, {"role": "assistant", "content": "Still looking."}, messages[0]]
        worker = workers[n % len(workers)]
        if worker.check(who, WireFormat.OPENAI_CHAT, {"messages": messages}) is not None:
            return n
        event = CostEvent(
            provider="openai",
            requested_model="gpt-4o-mini",
            served_model="gpt-4o-mini",
            usage=Usage(input_tokens=20_000),
            cost=Cost(input=Decimal("0.003")),
            attribution=who,
        )
        worker.settled(who, event)
    return None


def test_tokens_settled_on_one_worker_count_on_the_next(store_url: str) -> None:
    config = LoopConfig(
        repeat_tool_calls=None, near_duplicate_run=None, ping_pong_rounds=None, no_progress_steps=None,
        no_progress_tokens=50_000,
    )  # fmt: skip
    alone = _tokens_story([GatewayGuards(BreakerRegistry(), config)])
    workers = [
        GatewayGuards(BreakerRegistry(), config, loop_states=LoopStates(config, s)) for s in _stores(store_url, 2)
    ]
    try:
        assert _tokens_story(workers) == alone == 4
    finally:
        for worker in workers:
            worker.loop_states.close()
