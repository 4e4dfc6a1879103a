import random

import pytest

from fiscus.errors import ConfigError
from fiscus.guards import LoopConfig, LoopDetector, canonical_tool_call, similarity
from fiscus.guards.similarity import similar


def test_canonical_tool_call_ignores_key_order_and_spacing():
    assert canonical_tool_call("search", '{"q": "x", "n": 1}') == canonical_tool_call("search", {"n": 1, "q": "x"})
    assert canonical_tool_call("search", "") == "search({})"
    assert canonical_tool_call("f", "not json") == "f(not json)"


def test_similarity_is_token_set_jaccard():
    assert similarity("a b c", "c b a") == 1.0
    assert similarity("a b", "c d") == 0.0
    assert similarity("a b c d", "a b c e") == pytest.approx(3 / 5)


def test_same_tool_call_three_times_in_five_steps():
    d = LoopDetector(LoopConfig(no_progress_tokens=None))
    assert d.after_call(tool_calls=[("search", '{"q":"acme"}')]) is None
    assert d.after_call(tool_calls=[("fetch", '{"u":1}')]) is None
    assert d.after_call(tool_calls=[("search", '{"q": "acme"}')]) is None
    found = d.after_call(tool_calls=[("search", {"q": "acme"})])
    assert found is not None and found.kind == "repeated_tool_call"
    assert found.evidence["count"] == 3


def test_repeats_spread_beyond_the_window_do_not_fire():
    d = LoopDetector(LoopConfig(no_progress_tokens=None))
    for i in range(12):
        calls = [("search", {"q": "acme"})] if i % 3 == 0 else [("other", {"i": i})]
        assert d.after_call(tool_calls=calls) is None


def test_near_identical_consecutive_requests():
    d = LoopDetector(LoopConfig(near_duplicate_run=3, similarity=0.9))
    assert d.before_call(agent="a", content="please summarise the report on acme corp") is None
    assert d.before_call(agent="a", content="please summarise the report on acme corp") is None
    found = d.before_call(agent="a", content="Please summarise the report on ACME corp!")
    assert found is not None and found.kind == "near_duplicate_request"


def test_different_requests_do_not_fire():
    d = LoopDetector()
    for i in range(20):
        assert d.before_call(agent="a", content=f"step {i}: read page {i * 7}") is None


def test_step_limit():
    d = LoopDetector(LoopConfig(max_steps=2))
    assert d.before_call(agent=None, content="one") is None
    assert d.before_call(agent=None, content="two") is None
    found = d.before_call(agent=None, content="three")
    assert found is not None and found.kind == "step_limit" and found.evidence == {"steps": 3, "max_steps": 2}


def test_ping_pong_between_two_agents():
    d = LoopDetector(LoopConfig(near_duplicate_run=None))
    assert d.before_call(agent="writer", content="draft v1 of the summary please review") is None
    assert d.before_call(agent="critic", content="needs more detail on pricing, revise") is None
    assert d.before_call(agent="writer", content="draft v1 of the summary please review") is None
    found = d.before_call(agent="critic", content="needs more detail on pricing, revise")
    assert found is not None and found.kind == "ping_pong"
    assert found.evidence["agents"] == ["writer", "critic"]


def test_real_conversation_between_two_agents_is_not_ping_pong():
    d = LoopDetector(LoopConfig(near_duplicate_run=None))
    for i in range(8):
        agent = "writer" if i % 2 == 0 else "critic"
        assert d.before_call(agent=agent, content=f"round {i} new material {i * 13} on topic {i}") is None


def test_spend_without_progress():
    d = LoopDetector(LoopConfig(no_progress_tokens=1000, repeat_tool_calls=None))
    assert d.after_call(output="first answer", tokens=600) is None
    assert d.after_call(output="second answer", tokens=600) is None  # new output is progress
    found = d.after_call(output="second answer", tokens=600)
    assert found is not None and found.kind == "spend_without_progress"
    d.before_call(agent=None, content="x", tool_results=["a brand new tool result"])
    assert d.after_call(output="second answer", tokens=600) is None


def test_config_is_validated():
    with pytest.raises(ConfigError):
        LoopConfig(action="explode")
    with pytest.raises(ConfigError):
        LoopConfig(similarity=0)
    with pytest.raises(ConfigError):
        LoopConfig(repeat_tool_calls=6, repeat_window=5)


def test_snapshot_is_json_safe():
    import json

    d = LoopDetector()
    d.before_call(agent="a", content="hello")
    d.after_call(tool_calls=[("t", {"x": 1})], output="hi", tokens=3)
    assert json.loads(json.dumps(d.snapshot()))["steps"] == 1


def test_near_duplicate_runs_match_pairwise_similarity():
    """Each request's sketch is kept for the next comparison; the detections are those of plain pairwise
    `similar` over consecutive requests."""
    rng = random.Random(11)
    words = ["read", "page", "acme", "Report", "report", "summary", "again", "ÉTAT", "état", "42"]
    config = LoopConfig(near_duplicate_run=3, similarity=0.75, ping_pong_rounds=None, action="warn")
    d = LoopDetector(config)
    previous: str | None = None
    run: list[float] = []
    for _ in range(3000):
        if previous is not None and rng.random() < 0.4:
            content = previous if rng.random() < 0.5 else previous + " " + rng.choice(words)
        else:
            content = " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
        found = d.before_call(agent="a", content=content)
        if previous is not None:
            score = similar(previous, content)
            run = [*run, score][-2:] if score >= config.similarity else []
        expected = len(run) == 2
        assert (found is not None) == expected
        if found is not None:
            assert found.evidence["similarities"] == [round(s, 4) for s in run]
        previous = content
