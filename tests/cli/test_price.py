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
