"""Post-mortem files hold no prompt or completion text unless the config opts in: a stolen key's failing calls in a
session trip its breaker through the gateway, and the file written is grepped for the prompt and the answer."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from fiscus.guards.settings import GuardsConfig
from tests.gateway.conftest import real_gateway

POLICY = "version: 1\nbudgets:\n  - {name: roomy, scope: {team: growth}, window: day, limit: {usd: 100}}\n"
SECRET_PROMPT = "Summarise the merger terms for Project Bluefin before the board meets"
SECRET_ANSWER = "Bluefin pays forty-two dollars a share in cash"
QUESTIONS = (  # each step asks something new: no loop, only failures
    SECRET_PROMPT,
    "Which regulators must clear Bluefin",
    "List the break fees owed under Bluefin",
    "Draft the Bluefin announcement for employees",
)


def _trip(tmp_path: Path, emulator_url: str, *, text: bool) -> str:
    guards = GuardsConfig.model_validate(
        {
            "breakers": {"per_key": {"min_calls": 4, "error_window": 4, "error_rate": 0.5}},
            "postmortem_dir": str(tmp_path / "pm"),
            "postmortem_text": text,
        }
    )
    store = f"sqlite:///{tmp_path}/budget.db"
    with real_gateway(tmp_path, emulator_url, POLICY, store, config_update={"guards": guards}) as real:
        client = real.openai(default_headers={"x-fiscus-session": "s-1", "x-emulator-error": "400"})
        history = [{"role": "system", "content": "You are the deal desk."}]
        for question in QUESTIONS:
            history.append({"role": "user", "content": question})
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="gpt-4o-mini", messages=history)
            history.append({"role": "assistant", "content": SECRET_ANSWER})
    files = list((tmp_path / "pm").glob("*.json"))
    assert len(files) == 1 and "-key_" in files[0].name
    return files[0].read_text(encoding="utf-8")


def test_postmortems_hold_fingerprints_not_text(tmp_path: Path, emulator_url: str) -> None:
    written = _trip(tmp_path, emulator_url, text=False)
    assert "Bluefin" not in written and "merger" not in written
    assert '"sha256"' in written and '"text_included": false' in written
    assert '"reason": "error_rate"' in written and '"session": "s-1"' in written


def test_postmortems_keep_text_when_the_config_opts_in(tmp_path: Path, emulator_url: str) -> None:
    written = _trip(tmp_path, emulator_url, text=True)
    assert "Draft the Bluefin announcement" in written and '"text_included": true' in written
