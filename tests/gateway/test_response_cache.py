"""The exact response cache through the gateway with the official SDK clients: a deterministic request of a task
class that opts in is answered the second time from the cache (JSON and stream, OpenAI and Anthropic), with
`x-fiscus-cache: hit`, at $0, recorded as a cache_hit event whose saving is what the call cost; a request at a
non-zero temperature, of another task class or of another tenant is not answered from it; the store is the
budget store's backend (memory, SQLite, Redis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fiscus.events.cost_event import CallStatus
from tests.gateway.conftest import real_gateway

POLICY = """
version: 1
response_cache:
  triage: {ttl: 10m, max_entries: 100}
  anything: {ttl: 10m, any_temperature: true}
budgets:
  - {name: day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""
SYSTEM = "Classify the ticket as billing, bug, feature or other. " * 20


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.mark.parametrize("kind", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_repeated_request_is_answered_from_the_cache(
    kind: str, tmp_path: Path, emulator_url: str, request: pytest.FixtureRequest
) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY, _store(kind, tmp_path, request)) as real:
        gpt = real.openai()
        headers = {"x-fiscus-task-class": "triage"}
        messages: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Ticket 7: wrong VAT"}]

        def ask(**kw: Any) -> Any:
            return gpt.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=messages, max_tokens=40, extra_headers=headers, **kw
            )

        first = ask(temperature=0)
        second = ask(temperature=0)
        assert first.headers["x-fiscus-cache"] == "miss" and second.headers["x-fiscus-cache"] == "hit"
        assert second.headers["x-fiscus-cost-usd"] == "0"
        answer, again = first.parse(), second.parse()
        assert again.choices[0].message.content == answer.choices[0].message.content
        assert again.usage is not None and again.usage.total_tokens == answer.usage.total_tokens  # type: ignore[union-attr]
        warm = ask(temperature=0.7)  # not deterministic: never from the cache
        assert "x-fiscus-cache" not in warm.headers
        other = gpt.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=messages, max_tokens=40, temperature=0, extra_headers={"x-fiscus-task-class": "x"}
        )
        assert "x-fiscus-cache" not in other.headers
        events = real.events()
    paid = [e for e in events if e.status is CallStatus.OK]
    (hit,) = [e for e in events if e.status is CallStatus.CACHE_HIT]
    assert len(paid) == 3
    first_event = next(e for e in paid if e.id == first.headers["x-fiscus-request-id"])
    assert hit.id == second.headers["x-fiscus-request-id"]
    assert hit.cost.total == 0 and hit.usage.total_tokens == 0
    assert hit.ungoverned_usd == first_event.cost.total > 0  # no prompt cache on this short prompt
    assert hit.saved is not None and hit.saved.response_cache == hit.ungoverned_usd
    assert hit.tags["response_cache"] == "hit"


def test_streams_and_anthropic_and_owners(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        claude = real.anthropic()
        messages: Any = [{"role": "user", "content": "Summarise ticket 9 in one line."}]
        headers = {"x-fiscus-task-class": "anything"}

        def streamed() -> tuple[str, str]:
            with claude.messages.with_streaming_response.create(
                model="claude-haiku-4-5",
                max_tokens=30,
                messages=messages,
                stream=True,
                extra_headers=headers,
            ) as response:
                body = "".join(response.iter_text())
                return response.headers["x-fiscus-cache"], body

        miss, first = streamed()
        hit, second = streamed()
        assert (miss, hit) == ("miss", "hit")
        assert "event: message_stop" in second
        assert _text(second) == _text(first) != ""
        whole = [
            claude.messages.with_raw_response.create(
                model="claude-haiku-4-5", max_tokens=30, messages=messages, extra_headers=headers
            )
            for _ in range(2)
        ]
        assert [w.headers["x-fiscus-cache"] for w in whole] == ["miss", "hit"]  # a whole answer is cached apart
        assert whole[1].parse().content[0].text == whole[0].parse().content[0].text  # type: ignore[union-attr]
        tenant = claude.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=30,
            messages=messages,
            extra_headers=headers | {"x-fiscus-tenant": "acme"},
        )
        assert tenant.headers["x-fiscus-cache"] == "miss"  # another tenant never gets this one's answers
        events = real.events()
    hits = [e for e in events if e.status is CallStatus.CACHE_HIT]
    assert len(hits) == 2 and all(e.saved is not None and e.saved.response_cache > 0 for e in hits)
    assert all(e.cost.total == 0 for e in hits)


def _text(sse: str) -> str:
    import json

    out = []
    for line in sse.splitlines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
            delta = data.get("delta") or {}
            out.append(delta.get("text", ""))
    return "".join(out)
