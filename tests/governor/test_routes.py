"""Task-class routing (`routes:` in the policy): a call of a routed task class runs on the model its class is
routed to within its model's ladder — down for triage, up for research — reserved and priced as that model,
and recorded as asked for the caller's model and served by the routed one. Budgets then apply on top."""

from __future__ import annotations

import pytest

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.errors import ConfigError
from fiscus.governor import CallRequest
from fiscus.policy import parse_policy
from fiscus.usage.model import Usage
from tests.governor._support import governor

LADDERS = {"local": ["big", "small"]}
ROUTES = {"triage": ["small"], "research": ["big"]}


def call(model: str, task_class: str | None) -> CallRequest:
    return CallRequest(
        provider="local",
        model=model,
        attribution=Attribution(team="growth", task_class=task_class),
        input_tokens=10_000,
        max_tokens=1000,
    )


def test_a_routed_task_class_runs_on_its_model_and_is_recorded_as_asked() -> None:
    gov, _, ledger, _ = governor({"ladders": LADDERS, "routes": ROUTES, "budgets": []})
    admission = gov.admit(call("big", "triage"))
    assert admission.decision.model == "small" and admission.decision.requested_model == "big"
    assert admission.request.model == "big"
    event = gov.settle(admission, Usage(input_tokens=10_000, output_tokens=100))
    assert (event.requested_model, event.served_model) == ("big", "small")
    assert event.cost.total == gov.catalogue.sheet(provider="local", model="small").cost(event.usage).total
    assert ledger.events == [event]


def test_routes_move_up_too_and_leave_other_calls_alone() -> None:
    gov, _, _, _ = governor({"ladders": LADDERS, "routes": ROUTES, "budgets": []})
    assert gov.admit(call("small", "research")).decision.model == "big"
    assert gov.admit(call("big", None)).decision.model == "big"  # no task class
    assert gov.admit(call("big", "chat")).decision.model == "big"  # a class with no route
    assert gov.admit(call("small", "triage")).decision.model == "small"  # already there
    ladders = parse_policy({"ladders": LADDERS}).ladders
    assert ladders.routed("elsewhere", ("small",)) is None  # a model on no ladder stays as asked
    assert ladders.routed("claude-sonnet-4-6", ("small", "claude-haiku-4-5")) == "claude-haiku-4-5"


def test_budgets_apply_to_the_routed_model() -> None:
    budget = {"name": "growth", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": "0.05"}}
    gov, _, _, _ = governor({"ladders": LADDERS, "routes": ROUTES, "budgets": [budget]})
    # big's worst case ($0.13) does not fit $0.05; the triage route to small ($0.013) does, unchanged
    admission = gov.admit(call("big", "triage"))
    assert admission.decision.action is Action.ALLOW and admission.decision.model == "small"
    assert admission.reservation is not None


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"triage": ["nowhere-model"]}, "routes.triage: model 'nowhere-model' is on no ladder"),
        ({"triage": ["small", "big"]}, "'small' and 'big' are on the same ladder (local)"),
    ],
)
def test_route_errors_name_the_field(routes: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match="routes"):
        parse_policy({"ladders": LADDERS, "routes": routes})
    try:
        parse_policy({"ladders": LADDERS, "routes": routes})
    except ConfigError as exc:
        assert message in str(exc)


def _session_call(model: str, task_class: str, tokens: int, session: str = "s1") -> CallRequest:
    return CallRequest(
        provider="anthropic",
        model=model,
        attribution=Attribution(team="growth", task_class=task_class, session=session),
        input_tokens=tokens,
        max_tokens=300,
    )


def test_a_session_stays_on_its_model_while_the_cache_it_would_lose_is_worth_more() -> None:
    routes = {"simple": ["claude-haiku-4-5"]}
    gov, _, _, _ = governor({"routes": routes, "budgets": []})
    assert gov.admit(_session_call("claude-sonnet-4-6", "standard", 30_000)).decision.model == "claude-sonnet-4-6"
    # 30k cached on Sonnet (0.3 $/M) beats 31k fresh on Haiku (1 $/M): the session stays
    kept = gov.admit(_session_call("claude-sonnet-4-6", "simple", 31_000)).decision
    assert kept.model == "claude-sonnet-4-6"
    # a short session has little to lose: the route saves more, it moves (and then stays where it went)
    gov.admit(_session_call("claude-sonnet-4-6", "standard", 2_500, session="s2"))
    moved = gov.admit(_session_call("claude-sonnet-4-6", "simple", 3_000, session="s2")).decision
    assert moved.model == "claude-haiku-4-5" and moved.requested_model == "claude-sonnet-4-6"
    # without a session, or for a session never seen, the route applies as written
    assert gov.admit(_session_call("claude-sonnet-4-6", "simple", 31_000, session="new")).decision.model == (
        "claude-haiku-4-5"
    )
