"""`Decision.count_helps`: near a limit, where the byte bound alone stops a call its estimate says fits, a door that
can count (`CallRequest.countable`) is told to count before anything is reserved or announced; admitted again on
the count, the call runs on its model and the budget still holds. Never asked of a door that cannot count, of an
input already counted, or far from any limit."""

from __future__ import annotations

from dataclasses import replace

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.engine.request import CallRequest
from fiscus.governor import Governor
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store
from fiscus.usage.exact import count_bound

TOKENS = 10_000  # what the text counts: sonnet input $0.03
BYTES = 45_000  # its byte bound: $0.135, more than the budget


def governor(limit: str) -> Governor:
    budget = {"name": "day", "scope": {"agent": "r"}, "window": "day", "limit": {"usd": limit},
              "thresholds": [{"at": 1.0, "action": "partial"}]}  # fmt: skip
    return Governor(
        policy=parse_policy({"budgets": [budget]}), store=open_store("memory://"), catalogue=PriceCatalogue()
    )


def request(countable: bool = True) -> CallRequest:
    return CallRequest("anthropic", "claude-sonnet-4-6", Attribution(agent="r"), TOKENS, max_tokens=200,
                       cache_writes=False, input_bound=BYTES, countable=countable)  # fmt: skip


def test_a_countable_call_near_the_limit_is_told_to_count_and_holds_nothing() -> None:
    gov = governor("0.05")
    first = gov.admit(request())
    assert first.decision.count_helps and not first.decision.calls_model
    assert first.reservation is None and first.decision.hits == ()
    (status,) = gov.status()
    assert status.reserved.nanos == 0
    counted = gov.admit(request().counted(TOKENS, count_bound(TOKENS)))
    assert counted.decision.action is Action.ALLOW and counted.decision.model == "claude-sonnet-4-6"
    assert not counted.decision.count_helps and counted.reservation is not None
    gov.close()


def test_without_a_count_the_byte_bound_stands() -> None:
    gov = governor("0.05")
    decision = gov.admit(request(countable=False)).decision
    assert not decision.count_helps and decision.downgraded  # one tier down fits the byte bound
    gov.close()


def test_an_input_already_counted_is_not_counted_again() -> None:
    gov = governor("0.035")
    decision = gov.admit(request().counted(TOKENS, count_bound(TOKENS))).decision
    assert not decision.count_helps
    gov.close()


def test_far_from_a_limit_nothing_is_counted() -> None:
    gov = governor("10")
    decision = gov.admit(request()).decision
    assert not decision.count_helps and decision.action is Action.ALLOW
    gov.close()


def test_a_count_above_what_is_left_is_refused_on_it() -> None:
    gov = governor("0.05")
    assert gov.admit(request()).decision.count_helps
    heavy = 40_000  # the provider counts four times the estimate: the count, not the estimate, decides
    decision = gov.admit(replace(request(), input_tokens=TOKENS).counted(heavy, count_bound(heavy))).decision
    assert not decision.count_helps
    assert decision.model != "claude-sonnet-4-6" or not decision.calls_model
    gov.close()


def test_a_count_binds_only_the_model_it_was_made_for() -> None:
    counted = request().counted(TOKENS, count_bound(TOKENS))
    assert counted.hard_input_bound() == count_bound(TOKENS)
    elsewhere = replace(counted, provider="openai", model="gpt-4o")  # a route to another model keeps the bytes
    assert elsewhere.hard_input_bound() == BYTES
