import json
import subprocess
import sys
from pathlib import Path

import pytest

from fiscus.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_figures_json(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["price", "--provider", "anthropic", "--model", "claude-sonnet-4-6", "--calls", "1000", "--json"]
    code, out, _ = run(capsys, *base, "--input-tokens", "50000")
    assert code == 0
    assert json.loads(out)["total_usd"] == "150"
    code, out, _ = run(capsys, *base, "--cache-read-tokens", "50000")
    data = json.loads(out)
    assert data["total_usd"] == "15"
    assert data["usage"]["cache_read_tokens"] == 50000
    for key in (
        "input_tokens",
        "cache_read_tokens",
        "cache_write_5m_tokens",
        "cache_write_1h_tokens",
        "output_tokens",
        "reasoning_tokens",
    ):
        assert key in data["usage"]
    assert data["model"] == "claude-sonnet-4-6" and data["provider"] == "anthropic"


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        *("price", "--provider", "openai", "--model", "gpt-4o", "--input-tokens", "1000", "--output-tokens", "500"),
    )
    assert code == 0
    assert "$0.0075" in out and "total" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--provider", "anthropic", "--model", "nope"], "unknown model 'nope'"),
        (["--provider", "anthropic", "--model", "claude-haiku-4-5", "--input-tokens", "x"], "--input-tokens"),
        (["--provider", "anthropic", "--model", "claude-haiku-4-5", "--input-tokens", "-3"], "--input-tokens"),
        (["--provider", "anthropic", "--model", "claude-haiku-4-5", "--bogus"], "--bogus"),
        (["--provider", "anthropic"], "--model"),
        (["--provider", "anthropic", "--model", "claude-haiku-4-5", "--at", "yesterday"], "--at"),
        (
            ["--provider", "anthropic", "--model", "claude-haiku-4-5", "--output-tokens", "1", "--reasoning-tokens=2"],
            "reasoning_tokens",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code, _, err = run(capsys, "price", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fiscus: error:") and needle in lines[0]


def test_bad_config_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "fiscus.yaml"
    cfg.write_text("pricing:\n  discounts:\n    - percent: 150\n")
    code, _, err = run(capsys, "price", "--provider", "x", "--model", "y", "--config", str(cfg))
    assert code == 2
    assert "pricing.discounts.0.percent" in err and str(cfg) in err and len(err.strip().splitlines()) == 1


def test_console_script_no_traceback() -> None:
    exe = Path(sys.executable).with_name("fiscus")
    proc = subprocess.run(
        [str(exe), "price", "--provider", "anthropic", "--model", "nope"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("fiscus: error:")


@pytest.mark.parametrize(
    ("provider", "model", "total"),
    [
        ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "0.0198"),  # regional: 3.3 in, 16.5 out
        ("vertex", "claude-sonnet-4-5@20250929", "0.018"),
        ("gemini", "models/gemini-2.5-flash", "0.0028"),
        ("deepseek", "deepseek-chat", "0.000685"),
        ("groq", "llama-3.3-70b-versatile", "0.00138"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "0.00176"),
        ("mistral", "mistral-large-latest", "0.008"),
        ("xai", "grok-4", "0.018"),
        ("openrouter", "openai/gpt-4o", "0.0125"),
        ("azure", "gpt-4o-2024-08-06", "0.0125"),
    ],
)
def test_every_provider_is_priced_from_the_catalogue(
    capsys: pytest.CaptureFixture[str], provider: str, model: str, total: str
) -> None:
    # at a fixed hour: DeepSeek prices its off-peak hours (16:30–00:30 UTC) at half
    args = ["price", "-p", provider, "-m", model, "--input-tokens", "1000", "--output-tokens", "1000", "--json"]
    code, out, err = run(capsys, *args, "--at", "2026-12-01T20:00:00+00:00")
    assert (code, err) == (0, "")
    assert json.loads(out)["total_usd"] == total


def test_web_searches_are_priced_per_thousand(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["price", "-p", "anthropic", "-m", "claude-sonnet-4-5", "--web-searches", "3", "--json"]
    code, out, _ = run(capsys, *args)
    data = json.loads(out)
    assert (code, data["total_usd"], data["cost"]["tools_usd"]) == (0, "0.03", "0.03")
    code, out, _ = run(capsys, *args[:-1])
    assert code == 0 and "web searches" in out and "10 / 1k" in out
