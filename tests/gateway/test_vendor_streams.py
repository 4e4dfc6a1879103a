"""A Bedrock Claude stream through the gateway: the client speaks Anthropic Messages, Bedrock answers in AWS
event-stream frames, the client gets Anthropic's SSE and the call is priced at Bedrock's rates."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from fiscus.config import ProviderConfig
from fiscus.pricing import PriceCatalogue
from tests.gateway.conftest import UPSTREAM_KEY_ENV, real_gateway

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_the_gateway_relays_and_prices_a_bedrock_stream(tmp_path: Path, emulator_url: str) -> None:
    providers = {
        "bedrock": ProviderConfig(
            kind="bedrock",
            base_url=emulator_url,
            api_key_env=UPSTREAM_KEY_ENV,
            models=["us.anthropic.*"],
            max_retries=0,
        )
    }
    policy = "version: 1\nbudgets: []\n"
    with real_gateway(tmp_path, emulator_url, policy, f"sqlite:///{tmp_path}/b.db", {"providers": providers}) as gw:
        client = gw.anthropic()
        messages = [{"role": "user", "content": "Name three rivers."}]
        with client.messages.stream(model=MODEL, max_tokens=80, messages=messages) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        (event,) = gw.events()
    assert text and final.usage.output_tokens > 0
    assert (event.usage.input_tokens, event.usage.output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    expected = PriceCatalogue().price(event.usage, provider="bedrock", model=MODEL)
    assert event.provider == "bedrock" and event.cost.total == expected.total > Decimal(0)
