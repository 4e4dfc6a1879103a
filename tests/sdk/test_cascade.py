"""`fiscus.cascade`: cheapest model first, escalating until an answer is accepted; every attempt a governed,
recorded call; an answer fiscus made itself (budget exhausted) ends the cascade; bad arguments are refused."""

from __future__ import annotations

import asyncio

import pytest

import fiscus
from fiscus.errors import FiscusError
from fiscus.guards.registry import BreakerRegistry
from tests.sdk.conftest import make_governor

MESSAGES = [{"role": "user", "content": "Summarise the ticket in one line."}]
MODELS = ["gpt-4o-mini", "gpt-4o"]


def wrapped(client, tmp_path, budgets=None):
    governor, ledger, _ = make_governor(budgets)
    return fiscus.wrap(client, governor=governor, breakers=BreakerRegistry(postmortem_dir=tmp_path)), ledger


def test_the_first_finished_answer_is_taken(openai_client, tmp_path) -> None:
    client, ledger = wrapped(openai_client, tmp_path)
    answer = fiscus.cascade(client.chat.completions.create, models=MODELS, messages=MESSAGES, max_tokens=100)
    assert answer.model == "gpt-4o-mini" and answer.choices[0].finish_reason == "stop"
    assert [e.served_model for e in ledger.events] == ["gpt-4o-mini"]


def test_an_answer_cut_at_its_cap_escalates_and_the_last_is_returned(openai_client, tmp_path) -> None:
    client, ledger = wrapped(openai_client, tmp_path)
    answer = fiscus.cascade(client.chat.completions.create, models=MODELS, messages=MESSAGES, max_tokens=5)
    assert answer.model == "gpt-4o" and answer.choices[0].finish_reason == "length"
    assert [e.served_model for e in ledger.events] == MODELS
    assert all(e.cost.total > 0 for e in ledger.events)  # the escalation's price is on record


def test_a_task_own_test_and_anthropic(anthropic_client, tmp_path) -> None:
    client, ledger = wrapped(anthropic_client, tmp_path)
    answer = fiscus.cascade(
        client.messages.create,
        models=["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-5"],
        accept=lambda reply: reply.model == "claude-sonnet-4-6",
        messages=MESSAGES,
        max_tokens=100,
    )
    assert answer.model == "claude-sonnet-4-6" and answer.stop_reason == "end_turn"
    assert [e.served_model for e in ledger.events] == ["claude-haiku-4-5", "claude-sonnet-4-6"]


def test_an_exhausted_budget_ends_the_cascade(openai_client, tmp_path) -> None:
    budget = {"name": "tiny", "scope": {}, "window": "day", "limit": {"usd": "0.000001"}}
    client, ledger = wrapped(openai_client, tmp_path, [budget])
    answer = fiscus.cascade(client.chat.completions.create, models=MODELS, messages=MESSAGES, max_tokens=5)
    assert "budget" in answer.choices[0].message.content and answer.model == "gpt-4o-mini"
    assert [e.status for e in ledger.events] == ["partial"]


def test_async(async_openai_client, tmp_path) -> None:
    client, ledger = wrapped(async_openai_client, tmp_path)

    async def run() -> object:
        return await fiscus.acascade(client.chat.completions.create, models=MODELS, messages=MESSAGES, max_tokens=5)

    assert asyncio.run(run()).model == "gpt-4o"
    assert len(ledger.events) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": []}, "a list of models"),
        ({"models": "gpt-4o"}, "a list of models"),
        ({"models": MODELS, "model": "gpt-4o"}, "not model="),
        ({"models": MODELS, "stream": True}, "cannot stream"),
    ],
)
def test_bad_arguments(openai_client, tmp_path, kwargs, message) -> None:
    client, _ = wrapped(openai_client, tmp_path)
    with pytest.raises(FiscusError, match=message):
        fiscus.cascade(client.chat.completions.create, messages=MESSAGES, **kwargs)
