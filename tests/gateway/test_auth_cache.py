"""The gateway's attribution cache answers as `attribute` would, and never outlives the key object it came from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from fiscus.attribution import Attribution
from fiscus.gateway.auth import AttributionCache, attribute
from fiscus.gateway.protocol import BadRequest
from fiscus.keys import VirtualKey

KEY = VirtualKey("k1", "h", "fk_", Attribution(team="search", agent="a"), datetime(2026, 1, 1, tzinfo=UTC))


def test_same_answer_as_attribute_and_reused() -> None:
    cache = AttributionCache()
    headers = {"authorization": "Bearer x", "x-fiscus-session": "s1", "x-fiscus-priority": "background"}
    first = cache(KEY, headers)
    assert first == attribute(KEY, headers) and first[0].session == "s1" and first[1] == "background"
    assert cache(KEY, dict(headers)) is first
    assert cache(KEY, headers | {"x-fiscus-session": "s2"})[0].session == "s2"


def test_a_re_read_key_is_resolved_again() -> None:
    cache = AttributionCache()
    assert cache(KEY, {})[0].team == "search"
    moved = replace(KEY, attribution=Attribution(team="ads", agent="a"))
    assert cache(moved, {})[0].team == "ads"


def test_a_bad_header_is_refused_every_time() -> None:
    cache = AttributionCache(max_entries=1)
    for _ in range(2):
        with pytest.raises(BadRequest):
            cache(KEY, {"x-fiscus-session": "x" * 300})
    assert cache(KEY, {"x-fiscus-user": "u"})[0].user == "u"
    assert cache(KEY, {"x-fiscus-user": "v"})[0].user == "v"  # full: started over


def test_a_disallowed_claim_is_a_403_naming_the_header() -> None:
    with pytest.raises(BadRequest) as caught:
        AttributionCache()(KEY, {"x-fiscus-agent": "someone-else"})
    assert caught.value.status == 403 and caught.value.param == "x-fiscus-agent"
    assert "x-fiscus-agent: 'someone-else' is not allowed for key k1" in caught.value.message
