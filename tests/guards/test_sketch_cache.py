"""The sketch cache: a turn met again (by another check, detector or agent) is not sketched again, and a cached
sketch is the sketch itself."""

from fiscus.guards.loops import LoopDetector
from fiscus.guards.similarity import SketchCache, sketch


def test_a_turn_is_sketched_once_and_answers_the_same() -> None:
    cache = SketchCache(size=8)
    long = " ".join(f"finding {i} carrier-{i}" for i in range(3_000))
    for text in ("Check the refund policy for damaged items", long):
        for numbers in (True, False):
            assert cache.get(text, numbers=numbers) == sketch(text, numbers=numbers)
            assert cache.get(text, numbers=numbers) == sketch(text, numbers=numbers)
    assert cache.misses == 2  # one normalisation per turn, both sketches made from it


def test_a_cache_of_size_zero_keeps_nothing_and_the_lru_drops_the_oldest() -> None:
    off = SketchCache(size=0)
    assert off.get("alpha beta") == sketch("alpha beta") and off.misses == 0
    small = SketchCache(size=2)
    for text in ("one turn", "two turn", "three turn", "one turn"):
        small.get(text)
    assert small.misses == 4  # "one turn" was dropped for "three turn"


def test_detectors_of_a_session_chain_share_the_sketches() -> None:
    from fiscus.guards.similarity import SKETCHES

    SKETCHES.clear()
    chain = [LoopDetector() for _ in range(3)]
    turn = "Search result 7: " + " ".join(f"carrier-{i} volume {i}" for i in range(500))
    for detector in chain:
        detector.before_call(agent="researcher", content=turn, tool_results=(turn,))
    assert SKETCHES.misses == 1
