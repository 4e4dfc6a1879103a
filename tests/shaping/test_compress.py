import itertools
import json
from typing import Any

import pytest

from fiscus.shaping.compress import compress, fit_window
from fiscus.shaping.shorten import shorten_text
from fiscus.usage.estimate import count_request_tokens, estimate_tokens

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


def gemini_body(rounds: int) -> dict[str, Any]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": "Scan the competitors."}]}]
    for i in range(rounds):
        contents.append({"role": "model", "parts": [{"functionCall": {"name": "fetch", "args": {"i": i}}}]})
        rows = [{"row": n, "text": "market figure"} for n in range(300)]
        contents.append(
            {"role": "user", "parts": [{"functionResponse": {"name": "fetch", "response": {"rows": rows}}}]}
        )
    return {"systemInstruction": {"parts": [{"text": "Be careful."}]}, "contents": contents}


def gemini_pairs_valid(contents: list[dict[str, Any]]) -> bool:
    for before, item in itertools.pairwise(contents):
        answers = any("functionResponse" in p for p in item["parts"])
        if answers and not any("functionCall" in p for p in before["parts"]):
            return False
    return True


def test_under_target_is_unchanged():
    body = chat_body(1)
    new, cut = compress(body, "openai_chat", 10**9)
    assert new == body and cut == 0


def test_shorten_text_cuts_the_middle():
    text, cut = shorten_text(BIG, 100)
    assert "[fiscus: shortened from" in text and cut > 0
    assert text.startswith("log line") and text.rstrip().endswith("in it")


def test_json_tool_results_stay_parseable():
    rows = [{"id": n, "name": f"customer {n}", "notes": "x" * 200} for n in range(200)]
    text = json.dumps({"status": "ok", "count": 200, "rows": rows, "summary": "y" * 5000})
    short, cut = shorten_text(text, 600)
    data = json.loads(short)
    assert cut > 0 and estimate_tokens(short) <= 700
    assert data["status"] == "ok" and data["count"] == 200  # small values whole, every key kept
    assert data["rows"][0] == rows[0] and data["rows"][-1] == rows[-1]  # first and last items
    assert any(isinstance(r, str) and "items removed" in r for r in data["rows"])
    assert "[fiscus: shortened from" in data["summary"]


def test_keeps_the_system_prompt_the_latest_turn_and_the_latest_tool_result_whole():
    body = chat_body(12)
    before = count_request_tokens(body, "openai_chat")
    new, compression = fit_window(body, "openai_chat", before - 6000)  # about two old results' worth
    after = count_request_tokens(new, "openai_chat")
    assert compression.tokens_cut == before - after and after <= before - 6000
    msgs = new["messages"]
    assert msgs[0] == body["messages"][0] and msgs[-1] == body["messages"][-1]
    assert msgs[-2] == body["messages"][-2]  # the latest tool result, whole
    shortened = [m for m in msgs if m["role"] == "tool" and "shortened from" in m["content"]]
    assert shortened == [m for m in msgs[:9] if m["role"] == "tool"][: len(shortened)]  # the oldest first
    assert compression.tool_results_shortened == len(shortened) <= 3
    assert compression.messages_dropped == compression.messages_trimmed == 0
    assert chat_pairs_valid(msgs)
    assert body["messages"][3]["content"].startswith("result 0: ")  # the input is not mutated
    assert len(body["messages"][3]["content"]) > 10_000


def test_a_window_is_filled_not_emptied():
    """The reported fault: a 60k window sent 29k tokens, every result cut, the one just fetched included."""
    body = chat_body(30)  # ~3,000 tokens a result, ~90k in all
    new, compression = fit_window(body, "openai_chat", 60_000)
    after = count_request_tokens(new, "openai_chat")
    assert 54_000 <= after <= 60_000
    assert new["messages"][-2] == body["messages"][-2]
    assert compression.tool_results_shortened < 30 and compression.messages_dropped == 0


def test_drops_the_oldest_groups_when_shortening_is_not_enough():
    body = chat_body(12)
    new, compression = fit_window(body, "openai_chat", 2000)
    msgs = new["messages"]
    assert count_request_tokens(new, "openai_chat") <= 2000
    assert msgs[0] == body["messages"][0] and msgs[-1] == {"role": "user", "content": "Now summarise."}
    assert any("earlier messages removed" in str(m["content"]) for m in msgs)
    assert compression.messages_dropped > 0 and chat_pairs_valid(msgs)
    assert "dropped" in compression.describe()


def test_a_single_long_message_is_trimmed_middle_out():
    text = "Opening line. " + "filler words here " * 20_000 + "The question at the end?"
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
    }
    new, compression = fit_window(body, "openai_chat", 10_000)
    content = new["messages"][1]["content"]
    assert count_request_tokens(new, "openai_chat") <= 10_000 and compression.tokens_cut > 80_000
    assert content.startswith("Opening line.") and content.endswith("The question at the end?")
    assert compression.messages_trimmed == 1 and compression.describe() == "1 message trimmed"
    responses = {"model": "gpt-4o", "input": text}
    new, compression = fit_window(responses, "openai_responses", 10_000)
    assert count_request_tokens(new, "openai_responses") <= 10_000 and compression.messages_trimmed == 1


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


def test_gemini_results_stay_structured():
    body = gemini_body(6)
    new, compression = fit_window(body, "gemini", count_request_tokens(body, "gemini") // 2)
    assert compression.tool_results_shortened > 0 and gemini_pairs_valid(new["contents"])
    assert new["contents"][-1] == body["contents"][-1]
    oldest = new["contents"][2]["parts"][0]["functionResponse"]["response"]["rows"]
    assert oldest[0] == {"row": 0, "text": "market figure"} and any(isinstance(r, str) for r in oldest)


@pytest.mark.parametrize("target", [50, 300, 800, 5000])
def test_pairs_valid_at_any_target(target):
    new, _ = compress(chat_body(6), "openai_chat", target, keep_last=2)
    assert chat_pairs_valid(new["messages"])
    new, _ = compress(anthropic_body(6), "anthropic", target, keep_last=2)
    assert anthropic_pairs_valid(new["messages"])
    new, _ = compress(responses_body(6), "openai_responses", target, keep_last=2)
    assert responses_pairs_valid(new["input"])
    new, _ = compress(gemini_body(6), "gemini", target, keep_last=2)
    assert gemini_pairs_valid(new["contents"])


def test_the_same_request_is_shortened_the_same_way():
    body = chat_body(12)
    assert fit_window(body, "openai_chat", 9000) == fit_window(chat_body(12), "openai_chat", 9000)
