"""The dashboard in headless Chromium against a real gateway: the Finance first screen in plain words, every
section filled from the admin API, screenshots at desktop (1440) and laptop (1280) widths in the test's tmp dir.
Skips with the reason when no Chromium is installed (nothing is installed at test time)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import real_gateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); the browser test needs it"
)
POLICY = """
owners: {default: finops@example.com}
alerts: {daily_budget_burn: {warning: 0.000001, critical: 0.9}}
budgets:
  - name: growth-month
    scope: {team: growth}
    window: month
    limit: {usd: 50}
    thresholds: [{at: 0.0000001, action: compress, fraction: 0.5}]
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 20}}
"""
JARGON = ("compress", "half_open", "downgrade", "partial", "allow", "throttle", "utilisation", "breaker")


def _chromium(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=15000",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def _text(dom: str, element_id: str) -> str:
    """The visible text of the element with `element_id` (up to its section's end)."""
    start = dom.index(f'id="{element_id}"')
    part = dom[start : dom.index("</section>", start)]
    return html.unescape(re.sub(r"<[^>]+>", " ", part))


def test_finance_dashboard_in_chromium(tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budgets.db") as real:
        client = real.openai()
        for n in range(3):
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": f"ticket {n}: where is my parcel?"}],
                max_tokens=16,
                extra_headers={
                    "x-fiscus-session": f"case-{n}",
                    "x-fiscus-workflow": "parcels",
                    **({"x-fiscus-outcome": "resolved"} if n < 2 else {}),
                },
            )
        real.events()
        with httpx.Client(base_url=real.url, headers={"authorization": "Bearer admin-secret"}) as api:
            finance = api.get("/admin/finance").json()
        assert finance["cost_per_outcome"][0]["outcomes"][0]["outcome"] == "resolved"
        page = f"{real.url}/admin/dashboard#token=admin-secret"
        dom = _chromium(tmp_path, page, "--window-size=1440,1000", "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        shots = {}
        for width, height in ((1440, 1000), (1280, 800)):
            shot = tmp_path / f"dashboard-{width}.png"
            run = _chromium(tmp_path, page, f"--window-size={width},{height}", f"--screenshot={shot}")
            assert run.returncode == 0, run.stderr[-2000:]
            shots[width] = shot
    out = dom.stdout
    first_screen = " ".join(_text(out, part) for part in ("overview", "budgets", "anomalies"))
    for words in ("Month to date", "Month on pace for", "Saved this month", "growth-month", "finops@example.com"):
        assert words in first_screen, words
    assert "sending shorter context to stay within budget" in first_screen  # the state `compress`, in words
    lowered = first_screen.lower()
    assert not [word for word in JARGON if word in lowered], first_screen
    assert "Enter the admin token" not in first_screen and "Cannot read" not in first_screen
    outcomes = _text(out, "outcomes")
    assert "resolved" in outcomes and "no outcome reported" in outcomes
    assert "parcels" in _text(out, "cache") and "gpt-4o" in _text(out, "by-model")
    for shot in shots.values():
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert shots[1440].read_bytes() != shots[1280].read_bytes()
