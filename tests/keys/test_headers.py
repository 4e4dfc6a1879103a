"""x-fiscus-* headers: refine a key's attribution within what the key allows, parse priority."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from fiscus.attribution import Attribution
from fiscus.keys import (
    ClaimsError,
    DisallowedClaimError,
    InvalidHeaderError,
    KeyClaims,
    Priority,
    VirtualKey,
    ignored_headers,
    resolve_attribution,
    resolve_claims,
    resolve_priority,
)


def _key(claims: KeyClaims = KeyClaims()) -> VirtualKey:
    return VirtualKey(
        id="vk_1",
        key_hash="0" * 64,
        prefix="fk-abcde",
        attribution=Attribution(agent="triage", team="support", environment="prod", workflow="default", api_key="vk_1"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        claims=claims,
    )


REFINING = {
    "X-Fiscus-Workflow": "refund",
    "x-fiscus-session": "s-1",
    "x-fiscus-parent-session": "s-0",
    "x-fiscus-task-class": "summarise",
    "x-fiscus-tenant": "acme",
    "x-fiscus-user": "u-7",
    "x-fiscus-outcome": "resolved_case",
    "x-fiscus-agent": "triage",  # its own agent and team: nothing changes
    "x-fiscus-team": "support",
    "authorization": "Bearer fk-whatever",
}


def test_a_default_key_takes_headers_that_refine_it() -> None:
    a = resolve_attribution(_key(), REFINING)
    assert a == Attribution(
        agent="triage",
        team="support",
        environment="prod",
        workflow="refund",
        session="s-1",
        parent_session="s-0",
        task_class="summarise",
        tenant="acme",
        user="u-7",
        outcome="resolved_case",
        api_key="vk_1",
    )
    assert ignored_headers(_key(), REFINING) == ()


@pytest.mark.parametrize(("header", "value"), [("x-fiscus-agent", "planner"), ("X-Fiscus-Team", "growth")])
def test_a_default_key_cannot_claim_another_agent_or_team(header: str, value: str) -> None:
    with pytest.raises(DisallowedClaimError, match=f"{header.lower()}: '{value}' is not allowed for key vk_1, which "):
        resolve_attribution(_key(), {header: value})


def test_an_allow_list_admits_values_and_patterns_and_nothing_else() -> None:
    key = _key(KeyClaims.of({"agent": ["research-*", "planner"], "workflow": ["refund"]}))
    assert resolve_attribution(key, {"x-fiscus-agent": "research-7"}).agent == "research-7"
    assert resolve_attribution(key, {"x-fiscus-agent": "planner"}).agent == "planner"
    assert resolve_attribution(key, {"x-fiscus-agent": "triage"}).agent == "triage"  # its own
    assert resolve_attribution(key, {"x-fiscus-workflow": "default"}).workflow == "default"
    with pytest.raises(DisallowedClaimError, match=r"may claim research-\*, planner \(or its own 'triage'\)"):
        resolve_attribution(key, {"x-fiscus-agent": "Research-7"})  # patterns are case-sensitive
    with pytest.raises(DisallowedClaimError) as caught:
        resolve_attribution(key, {"x-fiscus-workflow": "export"})
    assert caught.value.header == "x-fiscus-workflow"
    with pytest.raises(DisallowedClaimError):
        resolve_attribution(key, {"x-fiscus-team": "growth"})  # no team list: its own team stands


def test_task_class_tenant_and_user_lists_bind_only_when_given() -> None:
    key = _key(KeyClaims.of({"task_class": ["summarise"], "tenant": ["acme", "globex"], "user": ["u-*"]}))
    a = resolve_attribution(
        key, {"x-fiscus-task-class": "summarise", "x-fiscus-tenant": "globex", "x-fiscus-user": "u-1"}
    )
    assert (a.task_class, a.tenant, a.user) == ("summarise", "globex", "u-1")
    for header, value in (("x-fiscus-task-class", "research"), ("x-fiscus-tenant", "initech"), ("x-fiscus-user", "v")):
        with pytest.raises(DisallowedClaimError, match=header):
            resolve_attribution(key, {header: value})


def test_a_key_set_to_ignore_keeps_its_own_values_and_says_which_headers(caplog: pytest.LogCaptureFixture) -> None:
    key = _key(KeyClaims.of({"workflow": ["refund"]}, "ignore"))
    headers = {"x-fiscus-agent": "planner", "x-fiscus-team": "growth", "x-fiscus-workflow": "export"}
    with caplog.at_level(logging.WARNING, logger="fiscus.keys"):
        a, ignored = resolve_claims(key, headers | {"x-fiscus-user": "u-1"})
    assert (a.agent, a.team, a.workflow, a.user) == ("triage", "support", "default", "u-1")
    assert ignored == ("x-fiscus-workflow", "x-fiscus-agent", "x-fiscus-team")
    assert "key vk_1: ignored x-fiscus-agent 'planner'" in caplog.text


def test_claims_are_validated() -> None:
    with pytest.raises(ClaimsError, match="cannot allow-list 'environment'"):
        KeyClaims.of({"environment": ["prod"]})
    with pytest.raises(ClaimsError, match="empty pattern"):
        KeyClaims.of({"agent": [""]})
    with pytest.raises(ClaimsError, match="refuse or ignore"):
        KeyClaims.of({}, "drop")
    assert KeyClaims.of({"user": [], "agent": ["a", "a"]}).to_dict() == {"agent": ["a"]}


def test_no_headers_keeps_the_key_attribution() -> None:
    key = _key()
    assert resolve_attribution(key, {}) == key.attribution
    assert resolve_attribution(key, {"x-fiscus-workflow": "  "}).workflow == "default"
    assert resolve_attribution(key, {"x-fiscus-agent": "  "}).agent == "triage"


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(InvalidHeaderError, match="x-fiscus-tenant: value longer than 256"):
        resolve_attribution(_key(), {"x-fiscus-tenant": "x" * 300})
    with pytest.raises(InvalidHeaderError, match="x-fiscus-user: value contains control"):
        resolve_attribution(_key(), {"x-fiscus-user": "a\x00b"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Priority.NORMAL),
        ("critical", Priority.CRITICAL),
        (" Background ", Priority.BACKGROUND),
        ("", Priority.NORMAL),
    ],
)
def test_priority(value: str | None, expected: Priority) -> None:
    headers = {} if value is None else {"X-Fiscus-Priority": value}
    assert resolve_priority(headers) is expected


def test_bad_priority() -> None:
    expected = "x-fiscus-priority: 'urgent' is not one of critical, normal, background"
    with pytest.raises(InvalidHeaderError, match=expected):
        resolve_priority({"x-fiscus-priority": "urgent"})
