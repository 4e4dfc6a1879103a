"""x-fiscus-* headers: refine a key's attribution, respect locking, parse priority."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fiscus.attribution import Attribution
from fiscus.keys import InvalidHeaderError, Priority, VirtualKey, ignored_headers, resolve_attribution, resolve_priority


def _key(locked: bool) -> VirtualKey:
    return VirtualKey(
        id="vk_1",
        key_hash="0" * 64,
        prefix="fk-abcde",
        attribution=Attribution(agent="triage", team="support", environment="prod", workflow="default", api_key="vk_1"),
        locked=locked,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


ALL = {
    "X-Fiscus-Workflow": "refund",
    "x-fiscus-session": "s-1",
    "x-fiscus-parent-session": "s-0",
    "x-fiscus-task-class": "summarise",
    "x-fiscus-tenant": "acme",
    "x-fiscus-user": "u-7",
    "x-fiscus-outcome": "resolved_case",
    "x-fiscus-agent": "planner",
    "x-fiscus-team": "growth",
    "authorization": "Bearer fk-whatever",
}


def test_unlocked_key_takes_every_header() -> None:
    a = resolve_attribution(_key(locked=False), ALL)
    assert a == Attribution(
        agent="planner",
        team="growth",
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
    assert ignored_headers(_key(locked=False), ALL) == ()


def test_locked_key_ignores_agent_and_team() -> None:
    key = _key(locked=True)
    a = resolve_attribution(key, ALL)
    assert (a.agent, a.team) == ("triage", "support")
    assert a.workflow == "refund" and a.tenant == "acme"
    assert ignored_headers(key, ALL) == ("x-fiscus-agent", "x-fiscus-team")


def test_no_headers_keeps_the_key_attribution() -> None:
    key = _key(locked=False)
    assert resolve_attribution(key, {}) == key.attribution
    assert resolve_attribution(key, {"x-fiscus-workflow": "  "}).workflow == "default"


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(InvalidHeaderError, match="x-fiscus-tenant: value longer than 256"):
        resolve_attribution(_key(False), {"x-fiscus-tenant": "x" * 300})
    with pytest.raises(InvalidHeaderError, match="x-fiscus-user: value contains control"):
        resolve_attribution(_key(False), {"x-fiscus-user": "a\x00b"})


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
