"""The demo's agents: real `openai` and `anthropic` SDK clients calling through the gateway.

Each agent is a generator of steps; a step makes one call and reports what the gateway said about it
(the budget header, the model that answered, the cost) so the console can show it live.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# About four characters a token: one "ctx-NNNN " word is two tokens or so; enough to grow context visibly.
_WORDS_PER_STEP = 250


@dataclass(slots=True)
class Step:
    agent: str
    n: int
    requested_model: str
    served_model: str
    budget: str  # "", "warn", "downgrade", "compress" or "exhausted" (x-fiscus-budget)
    guard: str  # "", "loop_detected" or "breaker_open" (x-fiscus-guard)
    cost: Decimal
    compressed_tokens: int
    text: str


def _header(headers: Any, name: str, default: str = "") -> str:
    return headers.get(name) or default


def researcher(anthropic_client: Any, steps: int) -> Iterator[Step]:
    """A research agent whose context grows every step: each answer and new notes are sent again."""
    history: list[dict[str, Any]] = []
    # A large stable system prompt marked for caching: written once, then read from cache at a tenth of the price.
    playbook = " ".join(f"rule-{i}: cite sources, compare pricing, flag gaps." for i in range(160))
    system = [
        {
            "type": "text",
            "text": f"You are a research agent. Summarise the competitor landscape. Playbook: {playbook}",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    for n in range(1, steps + 1):
        notes = " ".join(f"note-{n}-{i}" for i in range(_WORDS_PER_STEP))
        history.append({"role": "user", "content": f"Step {n}. New findings: {notes}"})
        raw = anthropic_client.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=300, system=system, messages=history
        )
        message = raw.parse()
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        history.append({"role": "assistant", "content": text or "(no text)"})
        yield _step("researcher", n, "claude-sonnet-4-6", message.model, raw.headers, text)


def triage(openai_client: Any, steps: int) -> Iterator[Step]:
    """A triage agent: short independent tickets on a cheap model."""
    for n in range(1, steps + 1):
        raw = openai_client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            max_tokens=60,
            messages=[
                {"role": "system", "content": "Classify the ticket: billing, bug, feature or other."},
                {"role": "user", "content": f"Ticket #{1000 + n}: the invoice for order {n} shows the wrong VAT."},
            ],
        )
        completion = raw.parse()
        text = completion.choices[0].message.content or ""
        yield _step("triage", n, "gpt-4o-mini", completion.model, raw.headers, text)


def debate(anthropic_client: Any, steps: int) -> Iterator[Step]:
    """Two agents stuck replying to each other with near-identical messages, on one workflow budget."""
    last = "Please double-check the plan and send it back with your corrections. " * 40
    for n in range(1, steps + 1):
        agent = "planner" if n % 2 else "critic"
        raw = anthropic_client.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=300,
            messages=[{"role": "user", "content": last}],
            extra_headers={"x-fiscus-agent": agent, "x-fiscus-session": "debate-1"},
        )
        message = raw.parse()
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        last = (text + " Please double-check the plan and send it back with your corrections. ") * 20
        yield _step(agent, n, "claude-haiku-4-5", message.model, raw.headers, text)


def _step(agent: str, n: int, requested: str, served: str, headers: Any, text: str) -> Step:
    return Step(
        agent=agent,
        n=n,
        requested_model=requested,
        served_model=_header(headers, "x-fiscus-served-model", served),
        budget=_header(headers, "x-fiscus-budget"),
        guard=_header(headers, "x-fiscus-guard"),
        cost=Decimal(_header(headers, "x-fiscus-cost-usd", "0")),
        compressed_tokens=int(_header(headers, "x-fiscus-compressed-tokens", "0") or 0),
        text=text,
    )
