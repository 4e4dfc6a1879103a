"""Translated requests both ways, what cannot be carried over, and errors mapped into the client's format."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from fiscus.providers.messages import ProviderError
from fiscus.providers.translate import Untranslatable, translation
from tests.providers.translate_support import IMAGE, chat_client, dumps, messages_client, to_anthropic, to_openai

# Requests.

TOOLS_CHAT = [
    {
        "type": "function",
        "function": {
            "name": "get_budget",
            "description": "Remaining budget of a team.",
            "parameters": {"type": "object", "properties": {"team": {"type": "string"}}, "required": ["team"]},
        },
    }
]
ROUND_TRIP_CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You answer budget questions."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "How much is left for search and ads? See the chart."},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                {
                    "id": "call_A",
                    "type": "function",
                    "function": {"name": "get_budget", "arguments": '{"team":"search"}'},
                },
                {"id": "call_B", "type": "function", "function": {"name": "get_budget", "arguments": '{"team":"ads"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_A", "content": "$412.50"},
        {"role": "tool", "tool_call_id": "call_B", "content": "$80.00"},
        {"role": "user", "content": "And in total?"},
    ],
    "tools": TOOLS_CHAT,
    "tool_choice": "required",
    "max_completion_tokens": 300,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["END", "STOP"],
    "user": "tenant-7",
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_chat_request_to_messages() -> None:
    out = to_anthropic(ROUND_TRIP_CHAT)
    assert out["model"] == "claude-sonnet-4-5" and out["system"] == "You answer budget questions."
    assert out["max_tokens"] == 300 and out["stop_sequences"] == ["END", "STOP"]
    assert out["metadata"] == {"user_id": "tenant-7"} and out["tool_choice"] == {"type": "any"}
    assert out["tools"] == [
        {
            "name": "get_budget",
            "description": "Remaining budget of a team.",
            "input_schema": TOOLS_CHAT[0]["function"]["parameters"],
        }
    ]
    assert [m["role"] for m in out["messages"]] == [
        "user",
        "assistant",
        "user",
    ]  # tool results and the next turn merged
    user, assistant, results = out["messages"]
    assert user["content"][1]["source"] == {"type": "base64", "media_type": "image/png", "data": IMAGE}
    assert user["content"][2]["source"] == {"type": "url", "url": "https://example.com/chart.png"}
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": "call_A",
        "name": "get_budget",
        "input": {"team": "search"},
    }
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_A", "content": "$412.50"},
        {"type": "tool_result", "tool_use_id": "call_B", "content": "$80.00"},
        {"type": "text", "text": "And in total?"},
    ]
    assert "stream_options" not in out and out["stream"] is True


def test_chat_request_round_trip_keeps_its_meaning() -> None:
    back = to_openai(to_anthropic(ROUND_TRIP_CHAT), "gpt-4o")
    assert back["messages"][0] == {"role": "system", "content": "You answer budget questions."}
    assert back["messages"][1]["content"] == ROUND_TRIP_CHAT["messages"][1]["content"]
    assistant = back["messages"][2]
    assert assistant["content"] == "Checking both."
    assert [(c["id"], orjson.loads(c["function"]["arguments"])) for c in assistant["tool_calls"]] == [
        ("call_A", {"team": "search"}),
        ("call_B", {"team": "ads"}),
    ]
    assert back["messages"][3:] == ROUND_TRIP_CHAT["messages"][3:]
    assert back["tools"] == TOOLS_CHAT and back["tool_choice"] == "required"
    for key in ("temperature", "top_p", "stop", "user", "stream", "stream_options"):
        assert back[key] == ROUND_TRIP_CHAT[key], key
    assert back["max_completion_tokens"] == 300


ROUND_TRIP_MESSAGES: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "system": [{"type": "text", "text": "You answer budget questions.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "How much is left for search?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_A", "name": "get_budget", "input": {"team": "search"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_A", "content": [{"type": "text", "text": "$412.50"}]},
                {"type": "text", "text": "Thanks. And this PDF?"},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                    "title": "q3.pdf",
                },
            ],
        },
    ],
    "tools": [
        {
            "name": "get_budget",
            "description": "Remaining budget of a team.",
            "input_schema": TOOLS_CHAT[0]["function"]["parameters"],
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "tool_choice": {"type": "tool", "name": "get_budget", "disable_parallel_tool_use": True},
    "max_tokens": 1024,
    "temperature": 0.5,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "tenant-7"},
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "stream": True,
}


def test_messages_request_to_chat() -> None:
    out = to_openai(ROUND_TRIP_MESSAGES)
    assert out["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You answer budget questions."}],
    }
    assert out["messages"][2] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "toolu_A", "type": "function", "function": {"name": "get_budget", "arguments": '{"team":"search"}'}}
        ],
    }
    assert out["messages"][3] == {
        "role": "tool",
        "tool_call_id": "toolu_A",
        "content": [{"type": "text", "text": "$412.50"}],
    }
    assert out["messages"][4]["content"][1] == {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "q3.pdf"},
    }
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_budget"}}
    assert out["parallel_tool_calls"] is False and out["max_completion_tokens"] == 1024
    assert out["stream_options"] == {"include_usage": True} and out["user"] == "tenant-7" and out["stop"] == ["END"]
    assert "thinking" not in out and b"cache_control" not in dumps(out)


def test_messages_request_round_trip_keeps_its_meaning() -> None:
    back = to_anthropic(to_openai(ROUND_TRIP_MESSAGES), "claude-sonnet-4-5")
    original = copy.deepcopy(ROUND_TRIP_MESSAGES)
    # What is dropped by design: thinking (request and past blocks) and cache_control.
    del original["thinking"]
    del original["system"][0]["cache_control"], original["tools"][0]["cache_control"]
    del original["messages"][1]["content"][0]
    assert back["system"] == original["system"][0]["text"]
    assert back["messages"][0]["content"] == [{"type": "text", "text": original["messages"][0]["content"]}]
    assert back["messages"][1:] == original["messages"][1:]
    for key in ("tools", "tool_choice", "max_tokens", "temperature", "stop_sequences", "metadata", "stream"):
        assert back[key] == original[key], key


def test_a_tool_error_is_marked_in_the_text() -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": "no such team", "is_error": True}
    out = to_openai(_MESSAGES | {"messages": [{"role": "user", "content": [result]}]})
    assert out["messages"] == [{"role": "tool", "tool_call_id": "t", "content": "Error: no such team"}]


def test_documents_both_ways() -> None:
    text = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Q3: $9,000"}}
    out = to_openai(_MESSAGES | {"messages": [{"role": "user", "content": [text]}]})
    assert out["messages"] == [{"role": "user", "content": "Q3: $9,000"}]
    file = {"type": "file", "file": {"filename": "q3.txt", "file_data": "data:text/plain;base64,UTM6ICQ5LDAwMA=="}}
    out = to_anthropic(_CHAT | {"messages": [{"role": "user", "content": [file]}]})
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Q3: $9,000"},
            "title": "q3.txt",
        }
    ]


def test_request_defaults_and_clamps() -> None:
    out = to_anthropic(
        {
            "model": "x",
            "messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "u"}],
            "temperature": 1.7,
            "stop": "END",
            "parallel_tool_calls": False,
            "tools": TOOLS_CHAT,
            "seed": 3,
            "n": 1,
            "logprobs": False,
            "response_format": {"type": "text"},
        }
    )
    assert out["max_tokens"] == 4096 and out["temperature"] == 1 and out["stop_sequences"] == ["END"]
    assert out["system"] == "d" and out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "seed" not in out and "n" not in out
    assert to_anthropic({"model": "x", "messages": [], "max_tokens": 50})["max_tokens"] == 50
    none = to_anthropic({"model": "x", "messages": [], "tools": TOOLS_CHAT, "tool_choice": "none"})
    assert none["tool_choice"] == {"type": "none"}
    named = to_anthropic(
        {
            "model": "x",
            "messages": [],
            "tools": TOOLS_CHAT,
            "tool_choice": {"type": "function", "function": {"name": "get_budget"}},
        }
    )
    assert named["tool_choice"] == {"type": "tool", "name": "get_budget"}
    assert (
        to_openai(
            {
                "model": "x",
                "max_tokens": 5,
                "messages": [],
                "tools": ROUND_TRIP_MESSAGES["tools"],
                "tool_choice": {"type": "any"},
            }
        )["tool_choice"]
        == "required"
    )


def test_the_same_translation_serves_each_fallback_model() -> None:
    raw = dumps(ROUND_TRIP_CHAT)
    t = translation("chat.completions", "messages", raw)
    assert t.operation == "messages"
    assert orjson.loads(t.request(raw, "claude-a"))["model"] == "claude-a"
    assert orjson.loads(t.request(raw, "claude-b"))["model"] == "claude-b"
    changed = dumps(ROUND_TRIP_CHAT | {"max_completion_tokens": 7})  # e.g. a cap the policy set after
    assert orjson.loads(t.request(changed, "claude-a"))["max_tokens"] == 7
    assert translation("messages", "chat.completions", dumps(ROUND_TRIP_MESSAGES)).operation == "chat.completions"


def test_a_request_from_chat_carries_no_cache_control_so_anthropic_writes_no_cache() -> None:
    out = to_anthropic(ROUND_TRIP_CHAT)

    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from keys(item)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    assert "cache_control" not in set(keys(out))


# What cannot be carried over.

_CHAT = {"model": "x", "messages": [{"role": "user", "content": "u"}]}
_MESSAGES = {"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "u"}]}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"n": 2}, "n > 1"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "'custom' tools"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio"),
        ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}, "file_id"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                    }
                ]
            },
            "arguments",
        ),
    ],
)
def test_untranslatable_chat_requests(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        chat_client(_CHAT | extra)
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert isinstance(caught.value, ProviderError)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search_20250305"),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
        ({"container": "c"}, "container"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "more than 4 stop_sequences"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
                ]
            },
            "'file' source",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x"}}]}
                ]
            },
            "'url' source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}],
                            }
                        ],
                    }
                ]
            },
            "'image' blocks in a tool_result",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
                    }
                ]
            },
            "server_tool_use",
        ),
    ],
)
def test_untranslatable_messages_requests(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        messages_client(_MESSAGES | extra)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_untranslatable_pairs_and_bodies() -> None:
    with pytest.raises(Untranslatable, match="responses"):
        translation("responses", "messages", dumps(_CHAT))
    with pytest.raises(Untranslatable, match="not valid JSON"):
        translation("chat.completions", "messages", b"{nope")


# Errors.


@pytest.mark.parametrize(
    ("status", "anthropic_type", "openai_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "not_found_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "api_error", "server_error"),
        (529, "overloaded_error", "server_error"),
        (503, "overloaded_error", "server_error"),
    ],
)
def test_errors_map_by_status_and_keep_the_message(status: int, anthropic_type: str, openai_type: str) -> None:
    openai_body = dumps({"error": {"message": "boom", "type": "whatever", "param": None, "code": "c1"}})
    out = orjson.loads(messages_client(_MESSAGES).error(status, openai_body))
    assert out == {"type": "error", "error": {"type": anthropic_type, "message": "boom"}}
    anthropic_body = dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    out = orjson.loads(chat_client(_CHAT).error(status, anthropic_body))
    assert out == {"error": {"message": "Overloaded", "type": openai_type, "param": None, "code": "overloaded_error"}}


def test_junk_error_bodies_are_wrapped_not_raised() -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    assert orjson.loads(chat_client(_CHAT).error(502, html))["error"]["message"] == html.decode()
    assert orjson.loads(messages_client(_MESSAGES).error(502, b""))["error"]["message"] == "HTTP 502 from the provider"
    assert (
        orjson.loads(messages_client(_MESSAGES).error(400, b"\xff\xfe[1,2]"))["error"]["type"]
        == "invalid_request_error"
    )
    long = orjson.loads(chat_client(_CHAT).error(500, b"x" * 10_000))["error"]["message"]
    assert len(long) < 2100
