"""Prompt-cache placement: breakpoints after tools + system prompt, the last stable turn and the growing
history once a prefix or conversation repeats, with the lifetime its reuse interval calls for — never on first
sight, never over the caller's own breakpoints, never for a prefix shorter than the model caches — on a copy of
the request, with bounded memory."""

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


EPHEMERAL = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}


def test_placed_on_the_second_sight_with_the_lifetime_its_reuse_interval_calls_for() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    first = body()
    assert placer.place(first) is None
    clock.now += 60
    placed = placer.place(body(messages=[{"role": "user", "content": "Another question"}]))
    assert placed is not None and first["system"] == PLAYBOOK  # the caller's request is not changed
    assert placed["system"] == [{"type": "text", "text": PLAYBOOK, "cache_control": EPHEMERAL}]
    clock.now += 1200  # back after 20 minutes: a five-minute entry would lapse unread, an hour's pays
    placed = placer.place(body(messages=[{"role": "user", "content": "A third question"}]))
    assert placed is not None and placed["system"][0]["cache_control"] == ONE_HOUR
    clock.now += 3601  # even an hour's cache would have lapsed
    assert placer.place(body(messages=[{"role": "user", "content": "A fourth"}])) is None
    assert placer.placed == 2 and placer.long_lived == 1


def _marks(request: dict[str, Any]) -> list[tuple[str, Any]]:
    """Where the breakpoints are: ("system", ttl) or (message index, ttl)."""
    found: list[tuple[str, Any]] = []
    for block in request["system"] if isinstance(request["system"], list) else []:
        if "cache_control" in block:
            found.append(("system", block["cache_control"].get("ttl", "5m")))
    for i, message in enumerate(request["messages"]):
        content = message["content"]
        for block in content if isinstance(content, list) else []:
            if "cache_control" in block:
                found.append((str(i), block["cache_control"].get("ttl", "5m")))
    return found


def test_conversation_breakpoints_on_the_last_stable_turn_and_the_growing_history() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    turns: list[dict[str, Any]] = [{"role": "user", "content": "Research the market."}]
    assert placer.place(body(messages=list(turns))) is None  # the first call of a conversation
    seen = []
    for step in range(3):
        clock.now += 20
        turns += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"t{step}", "name": "fetch", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{step}", "content": "data"}]},
        ]
        placed = placer.place(body(messages=list(turns)))
        assert placed is not None
        seen.append(_marks(placed))
    # the stable prefix, where the previous call ended (its write is read back), and the newest message
    assert seen == [
        [("system", "5m"), ("0", "5m"), ("2", "5m")],
        [("system", "5m"), ("2", "5m"), ("4", "5m")],
        [("system", "5m"), ("4", "5m"), ("6", "5m")],
    ]
    assert turns[-1]["content"][0].keys() == {"type", "tool_use_id", "content"}  # the caller's turns unchanged


def test_no_growing_history_breakpoint_when_the_next_call_outgrows_the_window() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    turns: list[dict[str, Any]] = [{"role": "user", "content": "Research the market."}]
    placer.place(body(messages=list(turns)), window_tokens=16_000)
    seen = []
    for step in range(3):  # each step adds a 4,000-token tool result: the fourth call is over 16,000
        clock.now += 20
        use = {"type": "tool_use", "id": f"t{step}", "name": "fetch", "input": {}}
        result = {"type": "tool_result", "tool_use_id": f"t{step}", "content": "row " * 4000}
        turns += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
        placed = placer.place(body(messages=list(turns)), window_tokens=16_000)
        assert placed is not None
        seen.append(_marks(placed))
    # the growing history is written while the next call still fits (it reads it back), not once the window
    # will cut into it; the breakpoint where the previous call ended stays
    assert seen == [
        [("system", "5m"), ("0", "5m"), ("2", "5m")],
        [("system", "5m"), ("2", "5m")],
        [("system", "5m"), ("4", "5m")],
    ]
    unbounded = CachePlacer(clock=clock)
    for messages in (turns[:3], turns[:5]):
        last = unbounded.place(body(messages=list(messages)))
    assert last is not None and _marks(last)[-1] == ("4", "5m")  # no window: the history is always written


def test_at_most_four_breakpoints_and_one_hour_entries_first() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    tools = [{"name": "lookup", "description": "Look it up.", "input_schema": {"type": "object"}}]
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    placer.place(body(tools=tools, messages=turns[:1]))
    clock.now += 30
    placed = placer.place(body(tools=tools, messages=[*turns, {"role": "user", "content": "More"}]))
    assert placed is not None
    assert placed["tools"][-1]["cache_control"] == EPHEMERAL
    assert len(_marks(placed)) == 3  # system, the previous call's end, the newest message: 4 with the tools


def test_the_models_own_minimum() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    mid = "Rule. " * 2400  # ~3,600 tokens: above Sonnet 4.5's 1,024 and Sonnet 4.6's 2,048, below Opus 4.6's 4,096
    for model, placed in (("claude-opus-4-6", False), ("claude-sonnet-4-5", True), ("claude-sonnet-4-6", True)):
        ask = {"model": model, "max_tokens": 8, "system": mid, "messages": MESSAGES}
        placer.place(ask)
        clock.now += 10
        assert (placer.place({**ask, "messages": [{"role": "user", "content": "Next"}]}) is not None) is placed


def test_thinking_blocks_are_never_marked() -> None:
    clock = Clock()
    placer = CachePlacer(clock=clock)
    blocks = [{"type": "text", "text": "Sure."}, {"type": "thinking", "thinking": "…"}]
    thought = {"role": "assistant", "content": blocks}
    placer.place(body(messages=MESSAGES))
    clock.now += 5
    placed = placer.place(body(messages=[*MESSAGES, thought]))
    assert placed is not None
    assert placed["messages"][1]["content"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in placed["messages"][1]["content"][1]


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


def test_tool_schemas_are_written_in_one_key_order() -> None:
    from fiscus.shaping.cache import stable_tools

    a = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"b": {}, "a": {}}}},
    }
    b = {
        "function": {"parameters": {"properties": {"a": {}, "b": {}}, "type": "object"}, "name": "f"},
        "type": "function",
    }
    first, second = stable_tools({"model": "gpt-5.4", "tools": [a]}), stable_tools({"model": "gpt-5.4", "tools": [b]})
    assert first is not None and second is not None and first == second
    assert (
        list(first["tools"][0]) == ["function", "type"]
        and first["tools"][0]["function"]["parameters"] == b["function"]["parameters"]
    )
    assert stable_tools(first) is None and stable_tools({"model": "m", "messages": []}) is None
