"""A deferrable task class's batches are admitted at background priority: they never take the room the policy
keeps for critical calls, while the same batch of another class fits."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from fiscus.policy.load import load_policy
from tests.gateway.conftest import real_gateway
from tests.gateway.test_batches_openai import jsonl, reserved_nanos

POLICY = """
version: 1
priority: {reserve_for_critical: 0.5}
deferrable: [nightly-eval]
budgets:
  - {name: day, scope: {team: growth}, window: day, limit: {usd: 0.015}, on_exhausted: block}
"""


def test_deferrable_batches_leave_the_critical_reserve_alone(tmp_path: Path, emulator_url: str) -> None:
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    assert load_policy(tmp_path / "p.yaml").deferrable == frozenset({"nightly-eval"})
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        client = real.openai()
        # Two requests of up to 1,000 output tokens on gpt-4o: about $0.01 at batch prices, two thirds of the day.
        file_id = client.files.create(file=("in.jsonl", jsonl(2, model="gpt-4o", max_tokens=1000)), purpose="batch").id
        nightly = {"x-fiscus-task-class": "nightly-eval"}
        small = client.files.create(file=("s.jsonl", jsonl(1, max_tokens=10)), purpose="batch").id
        fits = client.batches.with_raw_response.create(
            input_file_id=small, endpoint="/v1/chat/completions", completion_window="24h", extra_headers=nightly
        )
        assert fits.headers["x-fiscus-deferrable"] == "true"
        client.batches.cancel(fits.parse().id)
        with pytest.raises(openai.RateLimitError, match="do not fit"):
            client.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", extra_headers=nightly
            )
        raw = client.batches.with_raw_response.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            extra_headers={"x-fiscus-task-class": "triage"},
        )
        assert raw.status_code == 200 and "x-fiscus-deferrable" not in raw.headers
        assert reserved_nanos(real) > 0
