from fiscus.usage import anthropic_cache_write_bound, count_request_tokens

LONG = "policy " * 2000


def test_no_breakpoint_writes_nothing() -> None:
    body = {"system": LONG, "messages": [{"role": "user", "content": "hi"}]}
    assert anthropic_cache_write_bound(body) == 0


def test_bound_stops_at_the_last_breakpoint() -> None:
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    body = {"system": system, "messages": [{"role": "user", "content": "tail " * 3000}]}
    bound = anthropic_cache_write_bound(body)
    total = count_request_tokens(body, "anthropic")
    assert bound is not None and 0 < bound < total
    # A breakpoint on the last message makes the whole prompt cacheable.
    last = {"type": "text", "text": "tail " * 3000, "cache_control": {"type": "ephemeral"}}
    marked = {"system": system, "messages": [{"role": "user", "content": [last]}]}
    assert anthropic_cache_write_bound(marked) >= total - 10


def test_automatic_caching_may_write_everything() -> None:
    assert anthropic_cache_write_bound({"cache_control": {"type": "ephemeral"}, "messages": []}) is None
