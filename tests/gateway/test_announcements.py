"""Announcements a person can act on, through the real gateway and governor (official openai client, SQLite and
Redis stores) to Slack and webhook channels on loopback: each names the budget and its scope values, dollars
used of the limit, what happens to the calls and when the budget resets, and who made the call."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from fiscus.notify import NotifyConfig
from tests.gateway.conftest import real_gateway
from tests.notify.inbox import Inbox, inbox_fixture  # noqa: F401  (the `inbox` fixture)

MESSAGES = [{"role": "user", "content": "hi"}]
# $0.00001245 a call (gpt-4o-mini on the emulator, 20 output tokens at most): seven calls fit, the eighth does not
POLICY = """
budgets:
  - name: per-user-daily
    scope: {user: "*", team: growth}
    window: day
    limit: {usd: 0.0001}
    thresholds:
      - {at: 0.5, action: notify, channel: slack}
      - {at: 1.0, action: block}
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_slack_and_webhook_texts_name_budget_scope_dollars_action_and_reset(
    backend: str, inbox: tuple[Inbox, str], tmp_path: Path, emulator_url: str, request: pytest.FixtureRequest
) -> None:
    box, url = inbox
    if backend == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    notify = NotifyConfig.model_validate(
        {
            "channels": {"slack": {"kind": "slack", "url": f"{url}/slack"}, "ops": {"kind": "webhook", "url": url}},
            "default": ["ops"],
        }
    )
    with real_gateway(tmp_path, emulator_url, POLICY, store, config_update={"notify": notify}) as real:
        u1 = real.openai(default_headers={"x-fiscus-user": "u1"})
        served = 0
        for _ in range(9):
            try:
                u1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
                served += 1
            except openai.RateLimitError:
                pass
        (resets,) = {s.resets_at for s in real.governor.status()}
        assert real.governor.notifier is not None and real.governor.notifier.flush(5)  # type: ignore[attr-defined]
    assert served == 7
    when = resets.strftime("%Y-%m-%d %H:%M UTC")
    received = [(path, body.get("text") or body["summary"], body) for path, body in box.received]
    breakers = [text for _, text, _ in received if "circuit breaker" in text]
    assert all(text.startswith("fiscus: circuit breaker agent:support-bot opened (") for text in breakers)
    budgets = [(path, text, body) for path, text, body in received if "circuit breaker" not in text]
    assert [(path, text) for path, text, _ in budgets] == [
        (
            "/slack",
            "fiscus: budget per-user-daily (team=growth user=u1) at 62%: $0.000062 of $0.0001 used; notify only "
            f"(notify); resets {when}; last call by agent support-bot, team growth",
        ),
        (
            "/",
            "fiscus: budget per-user-daily (team=growth user=u1) exhausted: $0.000087 of $0.0001 used; calls are "
            f"refused (429) (block); resets {when}; last call by agent support-bot, team growth",
        ),
    ]
    exhausted = budgets[1][2]["event"]
    assert exhausted["scope"] == {"team": "growth", "user": "u1"} and exhausted["limit_usd"] == "0.0001"
    assert exhausted["spent_usd"] == "0.00008715" and exhausted["agent"] == "support-bot"
