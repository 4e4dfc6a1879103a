"""Prompt-cache placement: a breakpoint after tools + system prompt once that prefix repeats within the cache's
lifetime — never on first sight, never over the caller's own breakpoints, never for a prefix too short to
cache — on a copy of the request, with bounded memory."""

from __future__ import annotations

from typing import Any

from fiscus.shaping.cache import CachePlacer

PLAYBOOK = "You are the support playbook. " + "Follow every rule in section %d carefully. " * 400
MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 64, "system": PLAYBOOK, "messages": MESSAGES, **extra}


def test_placed_on_the_second_sight_within_the_lifetime() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    first = body()
    assert placer.place(first) is None
    clock.now += 299
    placed = placer.place(body())
    assert placed is not None and first["system"] == PLAYBOOK  # the caller's request is not changed
    assert placed["system"] == [{"type": "text", "text": PLAYBOOK, "cache_control": {"type": "ephemeral"}}]
    assert placed["messages"] is first["messages"]
    clock.now += 301  # the cache would have expired: seen anew
    assert placer.place(body()) is None
    assert placer.placed == 1


def test_blocks_tools_and_what_is_left_alone() -> None:
    placer = CachePlacer(clock=Clock())
    blocks = [{"type": "text", "text": "Rules."}, {"type": "text", "text": PLAYBOOK}]
    for _ in range(2):
        placed = placer.place(body(system=blocks))
    assert placed is not None and placed["system"][0] == blocks[0]
    assert placed["system"][1] == {**blocks[1], "cache_control": {"type": "ephemeral"}}
    tools = [{"name": "lookup", "description": PLAYBOOK, "input_schema": {"type": "object"}}]
    for _ in range(2):
        placed = placer.place({"model": "m", "tools": tools, "messages": MESSAGES})
    assert placed is not None and placed["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    own = [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]
    short = body(system="Be brief.")
    for _ in range(3):
        assert placer.place(body(messages=own)) is None  # the caller places its own breakpoints
        assert placer.place(body(cache_control={"type": "ephemeral"})) is None  # or asks for automatic caching
        assert placer.place(short) is None  # too short to be cached
        assert placer.place({"model": "m", "messages": MESSAGES}) is None  # no prefix
        assert placer.place(body(system=object())) is None  # not JSON data


def test_memory_is_bounded() -> None:
    placer = CachePlacer(clock=Clock(), max_prefixes=10)
    for n in range(100):
        placer.place(body(system=PLAYBOOK + str(n)))
    assert len(placer._seen) == 10
