"""The emulator's own surface (health, stats, exports, CLI) and its pure parts (tokens, caches, buckets)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import openai
import pytest
import typer
from typer.testing import CliRunner

import fiscus.emulator
from fiscus.cli.emulate import register
from fiscus.emulator.caching import Breakpoint, TtlLru, anthropic_cache, prefix_cached_tokens
from fiscus.emulator.config import EmulatorConfig, ManualClock
from fiscus.emulator.ratelimit import RateLimiter
from fiscus.emulator.reply import ToolSpec, plan
from fiscus.emulator.steering import resolve
from fiscus.emulator.tokens import count_text


def test_exports() -> None:
    assert sorted(fiscus.emulator.__all__) == ["EmulatorConfig", "create_app", "run_in_thread"]


def test_healthz_and_unknown_paths(control: httpx.Client) -> None:
    assert control.get("/healthz").text == "ok"
    openai_style = control.post("/v1/nowhere")
    assert openai_style.status_code == 404 and openai_style.json()["error"]["message"].startswith("Invalid URL")
    anthropic_style = control.post("/v1/nowhere", headers={"anthropic-version": "2023-06-01"})
    assert anthropic_style.json()["error"]["type"] == "not_found_error"


def test_stats_count_calls_and_tokens_then_reset(oai: openai.OpenAI, control: httpx.Client, stats: Any) -> None:
    usage = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "count me"}]).usage
    list(oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "me too"}], stream=True))
    counters = stats()
    assert counters["requests"] == 2 and counters["streams"] == 1
    assert counters["by_endpoint"] == {"openai.chat": 2}
    assert counters["output_tokens"] == 2 * usage.completion_tokens
    control.post("/_emulator/reset")
    assert stats()["requests"] == 0


def test_anthropic_models_list(control: httpx.Client) -> None:
    listed = control.get("/v1/models", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}).json()
    assert listed["data"][0]["type"] == "model" and all(m["id"].startswith("claude") for m in listed["data"])


def test_cli_help_lists_options() -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = CliRunner().invoke(app, ["emulate", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--latency-ms", "--error-rate", "--seed", "--batch-delay-ms"):
        assert option in result.output


def test_cli_serves_until_stopped() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", f"from fiscus.cli.emulate import emulate; emulate(port={port})"]
    process = subprocess.Popen(command, env=os.environ.copy(), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_token_counting() -> None:
    assert [count_text(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_ttl_lru_expiry_renewal_and_capacity() -> None:
    clock = ManualClock()
    lru = TtlLru(2, clock)
    lru.put("a", 10)
    clock.advance(8)
    assert lru.hit("a")  # renews to t+18
    clock.advance(8)
    assert lru.hit("a")
    clock.advance(11)
    assert not lru.hit("a")
    for key in "xyz":
        lru.put(key, 10)
    assert len(lru) == 2 and not lru.hit("x")


def test_anthropic_cache_segments_by_breakpoint() -> None:
    lru = TtlLru(100, ManualClock())
    text = "a" * 8000 + "b" * 8000
    marks = [Breakpoint(8000, "1h"), Breakpoint(16000, "5m")]
    first = anthropic_cache(lru, "m", text, [8000, 16000], marks, 1024)
    assert (first.read, first.write_1h, first.write_5m) == (0, 2000, 2000)
    changed = "a" * 8000 + "c" * 8000
    second = anthropic_cache(lru, "m", changed, [8000, 16000], marks, 1024)
    assert (second.read, second.write_1h, second.write_5m) == (2000, 0, 2000)
    assert anthropic_cache(lru, "other-model", text, [8000, 16000], marks, 1024).read == 0


def test_anthropic_cache_looks_back_from_a_moved_breakpoint() -> None:
    lru = TtlLru(100, ManualClock())
    anthropic_cache(lru, "m", "a" * 8000, [8000], [Breakpoint(8000, "5m")], 1024)
    grown = "a" * 8000 + "b" * 400
    later = anthropic_cache(lru, "m", grown, [8000, 8400], [Breakpoint(8400, "5m")], 1024)
    assert (later.read, later.write_5m) == (2000, 100)


def test_openai_cache_steps() -> None:
    lru = TtlLru(1000, ManualClock())
    text = "x" * 4 * 1300
    assert prefix_cached_tokens(lru, "m", text, 1300, 1024, 300) == 0
    assert prefix_cached_tokens(lru, "m", text, 1300, 1024, 300) == 1280
    assert prefix_cached_tokens(lru, "m", text[: 4 * 1100], 1100, 1024, 300) == 1024


def test_rate_limiter_refills_continuously() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    assert limiter.check("k", 1, None, 0).allowed
    assert limiter.check("k", 1, None, 0).exceeded == "requests"
    tokens = limiter.check("t", None, 100, 80)
    assert tokens.allowed and tokens.tokens is not None and tokens.tokens.remaining == 20
    denied = limiter.check("t", None, 100, 50)
    assert denied.exceeded == "tokens" and round(denied.retry_after_s) == 18
    clock.advance(18)
    assert limiter.check("t", None, 100, 50).allowed


def test_plan_respects_cap_and_forced_totals() -> None:
    steer = resolve(EmulatorConfig(), [(b"x-emulator-reasoning-tokens", b"10")])
    capped = plan("hi", None, 15, steer, 0)
    assert (capped.output_tokens, capped.reasoning_tokens, len(capped.pieces), capped.truncated) == (15, 10, 5, True)
    forced = resolve(EmulatorConfig(), [(b"x-emulator-output-tokens", b"7")])
    assert plan("hi", None, None, forced, 0).output_tokens == 7
    tool = ToolSpec("f", {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    called = plan("hi", tool, None, forced, 0)
    assert called.tool_call is not None and called.tool_call.arguments == {"n": 1}


def test_config_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="error_rate, rpm_limit"):
        EmulatorConfig(error_rate=1.5, rpm_limit=0)
