"""Every billed part of a call, read from real-shaped responses and priced from the catalogue, to the decimal.

The fixtures in data/billing follow the providers' documented shapes; the rates in the comments are the
installed genai-prices catalogue's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.errors import UsageFormatError
from fiscus.pricing import Cost, PriceCatalogue
from fiscus.usage import StreamUsageTracker, Usage, WireFormat, read_usage
from fiscus.usage.model import Iteration, UsageDetail

BILLING = Path(__file__).parent / "data" / "billing"
D = Decimal


@pytest.fixture(scope="module")
def catalogue() -> PriceCatalogue:
    return PriceCatalogue()


def read(name: str, provider: str | None = None) -> tuple[Usage, str | None, str]:
    reading = read_usage((BILLING / name).read_bytes(), provider=provider)
    return reading.usage, reading.model, reading.provider


def test_openai_chat_cache_writes_are_billed_at_the_write_rate(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("openai_chat_cache_write.json")
    assert usage == Usage(
        input_tokens=2000, cache_read_tokens=4000, cache_write_5m_tokens=6000, output_tokens=800, reasoning_tokens=300
    )
    cost = catalogue.price(usage, provider=provider, model=model)  # gpt-6-sol: 2 / 0.2 read / 2.5 write / 10 out
    assert cost == Cost(input=D("0.004"), cache_read=D("0.0008"), cache_write_5m=D("0.015"), output=D("0.008"))
    assert cost.total == D("0.0278")


def test_openai_responses_cache_writes_and_web_searches(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("openai_responses_cache_write_search.json")
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_5m_tokens) == (2000, 4000, 6000)
    assert usage.detail == UsageDetail(server_tools=(("web_searches", 1),))
    cost = catalogue.price(usage, provider=provider, model=model)  # + $10 per 1,000 searches
    assert cost.tools == D("0.01")
    assert cost.total == D("0.0378")


def test_anthropic_web_searches_are_billed_per_search(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("anthropic_web_search.json")
    assert usage.detail is not None
    assert usage.detail.server_tools == (("web_searches", 3), ("web_fetch_requests", 1))
    cost = catalogue.price(usage, provider=provider, model=model)  # claude-sonnet-4-5: 3 in / 15 out / $10 per 1k
    assert cost == Cost(input=D("0.0063"), output=D("0.01125"), tools=D("0.03"))
    assert cost.total == D("0.04755")


def test_anthropic_compaction_iteration_is_billed_with_the_message(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("anthropic_compaction.json")
    assert (usage.input_tokens, usage.output_tokens) == (203_000, 4_500)  # the top level shows 23,000 / 1,000
    assert usage.detail is not None
    assert [it.kind for it in usage.detail.iterations] == ["compaction", "message"]
    cost = catalogue.price(usage, provider=provider, model=model)  # claude-opus-4-6: 5 in / 25 out, no tiers
    assert cost == Cost(input=D("1.015"), output=D("0.1125"))
    assert cost.total == D("1.1275")


def test_anthropic_advisor_iteration_is_billed_at_the_advisor_model(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("anthropic_advisor.json")
    assert usage.detail is not None
    assert usage.detail.iterations[1] == Iteration(
        "advisor_message", Usage(input_tokens=1500, output_tokens=500), "claude-opus-4-6"
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (4200, 1000, 900)
    cost = catalogue.price(usage, provider=provider, model=model)
    # sonnet 4.5: 2,700 in x 3 + 1,000 read x 0.3 + 400 out x 15; opus 4.6: 1,500 x 5 + 500 x 25
    assert cost == Cost(input=D("0.0081") + D("0.0075"), cache_read=D("0.0003"), output=D("0.006") + D("0.0125"))
    assert cost.total == D("0.0344")


def test_anthropic_stream_final_event_does_not_reset_the_cache_read(catalogue: PriceCatalogue) -> None:
    tracker = StreamUsageTracker(WireFormat.ANTHROPIC)
    tracker.feed_bytes((BILLING / "anthropic_stream_cache_reset.sse").read_bytes())
    usage = tracker.finish()
    assert not usage.estimated
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (50, 20_000, 300)
    cost = catalogue.price(usage, provider="anthropic", model="claude-sonnet-4-5-20250929")
    assert cost == Cost(input=D("0.00015"), cache_read=D("0.006"), output=D("0.0045"), tools=D("0.01"))


def test_gemini_audio_input_has_its_own_rate_and_thinking_is_output(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("gemini_audio_input.json")
    assert usage.detail == UsageDetail((("input", "audio", 4000),))
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (5000, 500, 300)
    cost = catalogue.price(usage, provider=provider, model=model)  # gemini-2.5-flash: text 0.3, audio 1, out 2.5
    assert cost == Cost(input=D("0.0003") + D("0.004"), output=D("0.00125"))
    assert cost.total == D("0.00555")


def test_gemini_cached_audio_is_read_at_the_audio_cache_rate(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("gemini_cached_audio.json")
    assert model == "models/gemini-2.5-flash"
    assert usage.detail == UsageDetail((("input", "audio", 1000), ("cache_read", "audio", 3000)))
    cost = catalogue.price(usage, provider=provider, model=model)  # audio cache read 0.1
    assert cost == Cost(input=D("0.0013"), cache_read=D("0.0003"), output=D("0.00025"))


def test_gemini_image_output_has_its_own_rate(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("gemini_image_output.json")
    cost = catalogue.price(usage, provider=provider, model=model)  # gemini-2.5-flash-image: image out 30
    assert cost == Cost(input=D("0.000006"), output=D("0.0387"))


def test_gemini_2_grounding_is_billed_per_grounded_prompt(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("gemini_grounding.json")
    assert usage.detail == UsageDetail(server_tools=(("web_searches", 1),))  # three queries, one grounded prompt
    assert usage.input_tokens == 1012  # the prompt plus what the search put in front of the model
    cost = catalogue.price(usage, provider=provider, model=model)  # gemini-2.5-flash: 0.3 in / 2.5 out / $35 per 1k
    assert cost == Cost(input=D("0.0003036"), output=D("0.00005"), tools=D("0.035"))


def test_gemini_3_grounding_in_a_stream_is_billed_per_search_query(catalogue: PriceCatalogue) -> None:
    tracker = StreamUsageTracker(WireFormat.GEMINI)
    tracker.feed_bytes((BILLING / "gemini_grounding_stream.sse").read_bytes())
    usage = tracker.usage
    assert usage is not None and usage.detail == UsageDetail(server_tools=(("web_searches", 2),))
    cost = catalogue.price(usage, provider="gemini", model="gemini-3-flash-preview")  # $14 per 1,000 queries
    assert cost.tools == D("0.028")
    assert cost.total == D("0.02848")


def test_malformed_grounding_queries_are_an_error() -> None:
    body = b'{"candidates":[{"groundingMetadata":{"webSearchQueries":"oops"}}],"usageMetadata":{"promptTokenCount":1}}'
    with pytest.raises(UsageFormatError, match="webSearchQueries"):
        read_usage(body)


def test_deepseek_cache_hits_and_misses(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("deepseek_cache_hit.json", provider="deepseek")
    assert usage == Usage(input_tokens=400, cache_read_tokens=600, output_tokens=200)
    off_peak = datetime(2026, 12, 1, 20, tzinfo=UTC)  # DeepSeek halves its prices 16:30–00:30 UTC
    cost = catalogue.price(usage, provider=provider, model=model, at=off_peak)  # deepseek-chat: 0.135 / 0.035 / 0.55
    assert cost == Cost(input=D("0.000054"), cache_read=D("0.000021"), output=D("0.00011"))


def test_deepseek_split_alone_gives_the_prompt() -> None:
    usage = read_usage(
        b'{"object": "chat.completion", "model": "deepseek-chat", "choices": [], '
        b'"usage": {"completion_tokens": 5, "prompt_cache_hit_tokens": 30, "prompt_cache_miss_tokens": 12}}',
        provider="deepseek",
    ).usage
    assert usage == Usage(input_tokens=12, cache_read_tokens=30, output_tokens=5)


def test_openrouter_reported_cost_is_preferred_and_marked(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("openrouter_cost.json", provider="openrouter")
    assert usage.detail is not None and usage.detail.reported_cost == D("0.00063")
    cost = catalogue.price(usage, provider=provider, model=model)
    assert cost.total == D("0.00063")
    assert cost.provider_reported and not cost.fallback_price
    # split as the catalogue's prices split it: 194 x 2.5 in, 2 x 10 out
    assert cost.output == D("0.00002") * D("0.00063") / D("0.000505")


def test_openrouter_cost_prices_a_model_the_catalogue_lacks(catalogue: PriceCatalogue) -> None:
    usage = Usage(input_tokens=10, output_tokens=2, detail=UsageDetail(reported_cost=D("0.0004")))
    cost = catalogue.price(usage, provider="openrouter", model="someone/unlisted-model-9b")
    assert cost == Cost(input=D("0.0004"), provider_reported=True)


def test_bedrock_converse_cache_split_by_ttl(catalogue: PriceCatalogue) -> None:
    usage, model, provider = read("bedrock_converse_cache.json", provider="bedrock")
    assert model is None and provider == "bedrock"
    assert usage == Usage(input_tokens=1000, cache_read_tokens=2000, cache_write_1h_tokens=1000, output_tokens=200)
    # a us. profile is regional in the catalogue: 3.3 in / 0.33 read / 6.6 1h write / 16.5 out
    cost = catalogue.price(usage, provider=provider, model="us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert cost == Cost(input=D("0.0033"), cache_read=D("0.00066"), cache_write_1h=D("0.0066"), output=D("0.0033"))
    assert cost.total == D("0.01386")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": "74", "completion_tokens": 3}}',
         "prompt_tokens"),
        (b'{"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": -5, "completion_tokens": 3}}',
         "prompt_tokens"),
        (b'{"type": "message", "usage": {"input_tokens": 10, "output_tokens": 2.5}}', "output_tokens"),
        (b'{"type": "message", "usage": {"input_tokens": 10, "output_tokens": true}}', "output_tokens"),
        (b'{"candidates": [], "usageMetadata": {"promptTokenCount": {"n": 1}}}', "promptTokenCount"),
        (b'{"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 1, "cost": "free"}}', "cost"),
    ],
)  # fmt: skip
def test_a_malformed_count_is_an_error_not_a_silent_zero(body: bytes, field: str) -> None:
    with pytest.raises(UsageFormatError, match=f"malformed usage field '{field}'"):
        read_usage(body)


def test_a_malformed_count_in_a_stream_is_a_flagged_estimate() -> None:
    tracker = StreamUsageTracker(WireFormat.OPENAI_CHAT)
    tracker.feed_bytes(
        b'data: {"object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Paris"}}]}'
        b'\n\ndata: {"object":"chat.completion.chunk","model":"gpt-4o","choices":[],'
        b'"usage":{"prompt_tokens":"74","completion_tokens":2}}\n\ndata: [DONE]\n\n'
    )
    usage = tracker.finish(estimate_input_tokens=70)
    assert usage.estimated and usage.input_tokens == 70 and usage.output_tokens == 2
    assert usage.estimate_note is not None
    assert usage.estimate_note.startswith("the provider's usage report was malformed (malformed usage field")
