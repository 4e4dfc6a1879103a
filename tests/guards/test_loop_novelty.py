"""Rewording-robust loop checks and novelty as progress, on the detector itself."""

from fiscus.guards import LoopConfig, LoopDetector
from fiscus.guards.conversation import conversation_id

ASK_B = [
    "Agent B, could you verify the refund policy for damaged items and confirm the steps?",
    "Could you confirm the refund policy steps for damaged items, agent B? Please verify.",
    "Please verify and confirm the steps of the refund policy for damaged items, agent B.",
    "Agent B: confirm the damaged items refund policy steps, could you verify them?",
]
ASK_A = [
    "Agent A, I need you to check the refund policy for damaged items before I confirm.",
    "Before I confirm, agent A, I need you to check the damaged items refund policy.",
    "I need you to check the refund policy for damaged items first, agent A, then I confirm.",
    "Agent A, check the damaged items refund policy first; I need that before I confirm.",
]


def test_a_reworded_a2a_loop_is_stopped_within_ten_rounds() -> None:
    d = LoopDetector()
    for round_ in range(10):
        found = d.exchanged("a", ASK_B[round_ % 4]) or d.exchanged("b", ASK_A[round_ % 4])
        if found is not None:
            break
    assert found is not None and found.kind == "ping_pong" and round_ < 10


def test_a_legit_research_agent_growing_20k_tokens_a_step_is_not_stopped() -> None:
    d = LoopDetector(LoopConfig())
    for step in range(10):
        results = [" ".join(f"finding-{step}-{i}" for i in range(400))]
        assert d.before_call(agent="researcher", content=results[0], tool_results=results) is None
        found = d.after_call(tool_calls=[("search", {"q": "parcel market"})], output=f"noted {step}", tokens=20_000)
        assert found is None


def test_an_agent_getting_the_same_result_again_and_again_makes_no_progress() -> None:
    d = LoopDetector(LoopConfig(repeat_tool_calls=None, near_duplicate_run=None))
    found = None
    for _ in range(12):
        d.before_call(agent="r", content="no rows found", tool_results=["no rows found"])
        found = d.after_call(output="Let me try again.", tokens=100)
        if found is not None:
            break
    assert found is not None and found.kind == "no_progress" and d.steps < 10


def test_the_implicit_conversation_follows_key_agent_and_stable_prefix() -> None:
    first = {"system": "You research.", "messages": [{"role": "user", "content": "Parcel market?"}]}
    later = {**first, "messages": [*first["messages"], {"role": "assistant", "content": "..."}]}
    assert conversation_id("k1", "r", first) == conversation_id("k1", "r", later)
    assert conversation_id("k1", "r", first) != conversation_id("k2", "r", first)
    assert conversation_id("k1", "r", first) != conversation_id("k1", "other", first)
