from typing import Any

import pytest

from fiscus.shaping.compress import compress, shorten_text
from fiscus.usage.estimate import count_request_tokens

BIG = "log line with some words in it " * 400  # thousands of tokens


def chat_body(rounds: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful researcher."},
        {"role": "user", "content": "Scan the competitors."},
    ]
    for i in range(rounds):
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"call_{i}", "type": "function", "function": {"name": "fetch", "arguments": f'{{"i":{i}}}'}}
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": f"result {i}: {BIG}"})
    messages.append({"role": "user", "content": "Now summarise."})
    return {"model": "gpt-4o", "messages": messages}


def anthropic_body(rounds: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Scan the competitors."}]
    for i in range(rounds):
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"tu_{i}", "name": "fetch", "input": {"i": i}}],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"tu_{i}", "content": f"result {i}: {BIG}"}],
            }
        )
    return {"model": "claude-sonnet-4-5", "system": "Be careful.", "max_tokens": 100, "messages": messages}


def responses_body(rounds: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = [{"role": "user", "content": "Scan the competitors."}]
    for i in range(rounds):
        items.append({"type": "function_call", "call_id": f"c{i}", "name": "fetch", "arguments": f'{{"i":{i}}}'})
        items.append({"type": "function_call_output", "call_id": f"c{i}", "output": f"result {i}: {BIG}"})
    return {"model": "gpt-4o", "instructions": "Be careful.", "input": items}


def chat_pairs_valid(messages: list[dict[str, Any]]) -> bool:
    open_ids: set[str] = set()
    for m in messages:
        if m["role"] == "assistant":
            open_ids = {c["id"] for c in m.get("tool_calls") or ()}
        elif m["role"] == "tool" and m["tool_call_id"] not in open_ids:
            return False
    return True


def anthropic_pairs_valid(messages: list[dict[str, Any]]) -> bool:
    previous_uses: set[str] = set()
    for m in messages:
        blocks = m["content"] if isinstance(m["content"], list) else []
        if m["role"] == "user":
            for b in blocks:
                if b.get("type") == "tool_result" and b["tool_use_id"] not in previous_uses:
                    return False
            previous_uses = set()
        else:
            previous_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return messages[0]["role"] == "user"


def responses_pairs_valid(items: list[dict[str, Any]]) -> bool:
    calls = {i["call_id"] for i in items if i.get("type") == "function_call"}
    return all(i["call_id"] in calls for i in items if i.get("type") == "function_call_output")


def test_under_target_is_unchanged():
    body = chat_body(1)
    new, cut = compress(body, "openai_chat", 10**9)
    assert new == body and cut == 0


def test_shorten_text_marks_the_cut():
    text, cut = shorten_text(BIG, 100)
    assert "[fiscus: tool result shortened from" in text and cut > 0
    assert text.startswith("log line") and text.rstrip().endswith("in it")


def test_chat_keeps_system_last_turns_and_pairs():
    body = chat_body(12)
    before = count_request_tokens(body, "openai_chat")
    new, cut = compress(body, "openai_chat", 2000)
    after = count_request_tokens(new, "openai_chat")
    assert cut == before - after and after <= 2000
    msgs = new["messages"]
    assert msgs[0] == body["messages"][0]  # the system prompt stays
    assert msgs[-1] == {"role": "user", "content": "Now summarise."}
    assert chat_pairs_valid(msgs)
    assert any("earlier messages removed" in str(m["content"]) for m in msgs)
    assert any("tool result shortened from" in str(m["content"]) for m in msgs if m["role"] == "tool")
    assert body["messages"][3]["content"].startswith("result 0: ")  # the input is not mutated
    assert len(body["messages"][3]["content"]) > 10_000


def test_anthropic_keeps_pairs_and_system():
    body = anthropic_body(10)
    new, cut = compress(body, "anthropic", 1500)
    assert new["system"] == "Be careful."
    assert count_request_tokens(new, "anthropic") <= 1500 and cut > 0
    assert anthropic_pairs_valid(new["messages"])


def test_responses_keeps_pairs():
    body = responses_body(10)
    new, cut = compress(body, "openai_responses", 1500)
    assert new["instructions"] == "Be careful."
    assert count_request_tokens(new, "openai_responses") <= 1500 and cut > 0
    assert responses_pairs_valid(new["input"])


@pytest.mark.parametrize("target", [50, 300, 800, 5000])
def test_pairs_valid_at_any_target(target):
    new, _ = compress(chat_body(6), "openai_chat", target, keep_last=2)
    assert chat_pairs_valid(new["messages"])
    new, _ = compress(anthropic_body(6), "anthropic", target, keep_last=2)
    assert anthropic_pairs_valid(new["messages"])
    new, _ = compress(responses_body(6), "openai_responses", target, keep_last=2)
    assert responses_pairs_valid(new["input"])


def test_gemini_is_refused():
    with pytest.raises(ValueError):
        compress({"contents": []}, "gemini", 10)
