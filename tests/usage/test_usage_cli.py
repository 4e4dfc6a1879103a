"""`fiscus usage FILE`: normalised usage and cost of a saved response; one error line and exit 2 otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fiscus.cli.main import main
from fiscus.pricing import PriceCatalogue
from fiscus.usage import Usage

DATA = Path(__file__).parent / "data"
USAGE_KEYS = {
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "estimated",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["usage", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_for_an_anthropic_body(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(DATA / "anthropic_body.json"), "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert set(data) == {"provider", "model", "format", "streamed", "usage", "cost", "total_usd", "notes"}
    assert (data["provider"], data["model"], data["format"], data["streamed"]) == (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        "anthropic",
        False,
    )
    assert set(data["usage"]) == USAGE_KEYS
    assert data["usage"]["cache_write_1h_tokens"] == 2000 and data["usage"]["input_tokens"] == 18
    # $3 input, $0.30 cache read, $3.75 5-minute write, $6 1-hour write, $15 output per million tokens
    assert data["total_usd"] == data["cost"]["total_usd"] == "0.026322"
    assert data["cost"]["cache_write_1h_usd"] == "0.012"


@pytest.mark.parametrize(
    "name",
    [
        "openai_chat_body.json",
        "openai_chat_stream.sse",
        "openai_responses_body.json",
        "openai_responses_stream.sse",
        "gemini_body.json",
        "gemini_stream.sse",
        "anthropic_stream.sse",
    ],
)
def test_json_cost_matches_the_catalogue(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(DATA / name), "--json")
    assert code == 0
    data = json.loads(out)
    usage = Usage.from_dict(data["usage"])
    expected = PriceCatalogue().price(usage, provider=data["provider"], model=data["model"])
    assert data["cost"] == expected.to_dict()
    assert data["streamed"] is name.endswith(".sse")
    assert not usage.estimated


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(DATA / "gemini_body.json"))
    assert code == 0
    assert "gemini/gemini-2.5-flash" in out
    for label in ("input (uncached)", "cache read", "output", "of which reasoning", "total"):
        assert label in out
    assert "4,096" in out and "1,023" in out


def test_truncated_stream_is_flagged_estimated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = (DATA / "anthropic_stream.sse").read_bytes()
    cut = tmp_path / "cut.sse"
    cut.write_bytes(raw[: raw.index(b"event: message_delta")])
    code, out, _ = run(capsys, str(cut), "--json")
    assert code == 0
    usage = json.loads(out)["usage"]
    assert usage["estimated"] is True and usage["output_tokens"] > 0 and usage["input_tokens"] == 42
    code, out, _ = run(capsys, str(cut))
    assert "estimated" in out


def test_model_override_and_provider_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, str(DATA / "openai_chat_stream.sse"), "--provider", "openai", "-m", "gpt-4o-mini", "--json"
    )
    assert code == 0 and json.loads(out)["model"] == "gpt-4o-mini"
    code, out, _ = run(capsys, str(DATA / "gemini_body.json"), "--provider", "google", "--json")
    assert code == 0 and json.loads(out)["format"] == "gemini"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "missing.json: no such file"),
        (["{data}/anthropic_body.json", "--provider", "openai"], "does not match the response's format (anthropic)"),
        (["{data}/anthropic_body.json", "--provider", "cohere"], "--provider: expected one of"),
        (["{data}/anthropic_body.json", "--model", "no-such-model-x1"], "unknown model 'no-such-model-x1'"),
        (["{tmp}/garbage.txt"], "not a provider response: expected JSON or an SSE stream"),
        (["{tmp}/torn.json"], "not a provider response: malformed JSON"),
        (["{tmp}/nomodel.json"], "the response names no model; pass --model"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "garbage.txt").write_text("<html>502 Bad Gateway</html>")
    (tmp_path / "torn.json").write_text('{"id": "msg_1", "usage": {"input_tok')
    (tmp_path / "nomodel.json").write_text('{"type": "message", "usage": {"input_tokens": 3, "output_tokens": 1}}')
    argv = [a.format(data=DATA, tmp=tmp_path) for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("fiscus: error: ") and err.count("\n") == 1
    assert message in err


def test_installed_command(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("fiscus")
    ok = subprocess.run([str(exe), "usage", str(DATA / "openai_responses_body.json"), "--json"], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["usage"]["reasoning_tokens"] == 1344
    bad = subprocess.run([str(exe), "usage", str(tmp_path / "absent.sse")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("absent.sse: no such file")


BILLING = DATA / "billing"


def test_a_cut_stream_takes_its_input_from_the_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = (DATA / "openai_chat_stream.sse").read_bytes()
    cut = tmp_path / "cut.sse"
    cut.write_bytes(raw[: raw.index(b'"usage":{')].rsplit(b"data:", 1)[0])
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 4000}]}))
    code, out, _ = run(capsys, str(cut), "--json")
    assert code == 0 and json.loads(out)["usage"]["input_tokens"] == 0
    code, out, _ = run(capsys, str(cut), "--json", "--request", str(request))
    data = json.loads(out)
    assert code == 0 and data["usage"]["estimated"] is True
    assert data["usage"]["input_tokens"] > 1000  # the 4,000-character message, not 0
    assert "input counted from the request" in data["usage"]["estimate"]
    assert any(note.startswith("estimated: ") for note in data["notes"])


def test_server_tools_and_iterations_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(BILLING / "anthropic_web_search.json"))
    assert code == 0 and "server tools" in out and "web_searches 3" in out and "$0.03" in out
    code, out, _ = run(capsys, str(BILLING / "anthropic_advisor.json"), "--json")
    data = json.loads(out)
    assert data["total_usd"] == "0.0344"
    assert [it["model"] for it in data["usage"]["iterations"]] == [None, "claude-opus-4-6", None]


def test_bedrock_converse_is_priced_as_aws(capsys: pytest.CaptureFixture[str]) -> None:
    body = str(BILLING / "bedrock_converse_cache.json")
    code, out, err = run(capsys, body, "--provider", "bedrock")
    assert code == 2 and "names no model; pass --model" in err
    model = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    code, out, _ = run(capsys, body, "--provider", "bedrock", "--model", model, "--json")
    data = json.loads(out)
    assert (code, data["provider"], data["format"]) == (0, "bedrock", "bedrock_converse")
    assert data["total_usd"] == "0.0126"  # 1,000 x 3 + 2,000 x 0.3 + 1,000 x 6 (1 h write) + 200 x 15


def test_openrouter_cost_is_the_providers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(BILLING / "openrouter_cost.json"), "--provider", "openrouter", "--json")
    data = json.loads(out)
    assert (code, data["total_usd"], data["cost"]["provider_reported"]) == (0, "0.00063", True)


def test_a_count_sent_as_a_string_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "bad.json"
    body.write_text('{"object": "chat.completion", "model": "gpt-4o", "choices": [], '
                    '"usage": {"prompt_tokens": "74", "completion_tokens": 3}}')  # fmt: skip
    code, out, err = run(capsys, str(body))
    assert code == 2 and out == ""
    assert err.strip().endswith("malformed usage field 'prompt_tokens': expected a non-negative whole number, got '74'")
    assert len(err.strip().splitlines()) == 1
