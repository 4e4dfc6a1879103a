"""Overrides an operator can use, through the real gateway and governor with the official SDKs (SQLite and Redis
budget stores): a key refused by an overridable budget is let through once `fiscus overrides grant` (or the admin
API) grants it leave; the ledger names the override on each call it let through; grants, first use and
revocation are announced; a budget the policy does not mark overridable still refuses; a budget override lets
every key past that budget only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from fiscus.cli.main import main
from fiscus.events.override_events import OverrideGranted, OverrideRevoked, OverrideUsed
from tests.gateway.conftest import Real, serve_real

MESSAGES = [{"role": "user", "content": "Close the quarter."}]
POLICY = """
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {requests: 2}
    thresholds: [{at: 1.0, action: block, override: true}]
  - name: support-daily
    scope: {agent: support-bot}
    window: day
    limit: {requests: 6}
    on_exhausted: block
    thresholds: [{at: 1.0, action: block}]
"""
TOKEN = "admin-secret"


@pytest.fixture(params=["sqlite", "redis"])
def real(request: pytest.FixtureRequest, tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    if request.param == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    yield from serve_real(tmp_path, emulator_url, POLICY, store)


def _call(real: Real) -> None:
    real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)


def _key_id(real: Real) -> str:
    (key,) = real.keyring.list()
    return str(key.id)


def test_a_granted_override_lets_a_key_past_an_overridable_block_and_is_recorded(
    real: Real, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[object] = []
    real.governor.add_listener(seen.append)
    _call(real)
    _call(real)
    with pytest.raises(openai.RateLimitError):
        _call(real)
    config = tmp_path / "fiscus.yaml"
    config.write_text(f"keys: sqlite:///{tmp_path}/keys.db\npolicy: {tmp_path / 'policy.yaml'}\n", encoding="utf-8")
    code = main(["overrides", "grant", "--key", _key_id(real), "--for", "1h", "--reason", "quarter close", "--by",
                 "ana", "--config", str(config)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("granted ov_")
    override_id = out.split()[1]
    deadline = time.monotonic() + 5  # the gateway re-reads overrides every 2 s
    while True:
        try:
            _call(real)
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    claude = anthropic.Anthropic(base_url=real.url, api_key=real.key, max_retries=0)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    _call(real)
    _call(real)  # six requests: support-daily (not overridable) is now full
    with pytest.raises(openai.RateLimitError) as firm:
        _call(real)
    assert "support-daily" in firm.value.body["message"]

    events = real.events()
    passed = [e for e in events if e.tags.get("override")]
    assert [e.status for e in events].count("ok") == 6 and len(passed) == 4
    assert {e.tags["override"] for e in passed} == {override_id}
    used = [e for e in seen if isinstance(e, OverrideUsed)]
    assert len(used) == 1 and used[0].id == override_id and used[0].budgets == ("growth-daily",)

    code = main(["overrides", "list", "--config", str(config), "--json"])
    (listed,) = __import__("json").loads(capsys.readouterr().out)
    assert code == 0 and listed["id"] == override_id and listed["granted_by"] == "ana"
    assert main(["overrides", "revoke", override_id, "--config", str(config)]) == 0
    assert f"revoked {override_id} (key " in capsys.readouterr().out


def test_the_admin_api_grants_per_budget_lists_revokes_and_announces(
    real: Real, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", TOKEN)
    seen: list[object] = []
    real.governor.add_listener(seen.append)
    admin = httpx.Client(base_url=real.url + "/admin", headers={"authorization": f"Bearer {TOKEN}"})
    _call(real)
    _call(real)
    refused = admin.post("/overrides", json={"budget": "support-daily", "for": "1h", "reason": "x"})
    assert refused.status_code == 400 and "not marked overridable" in refused.json()["detail"]
    assert admin.post("/overrides", json={"budget": "nope", "for": "1h", "reason": "x"}).status_code == 400
    assert admin.post("/overrides", json={"key_id": "vk_nope", "for": "1h", "reason": "x"}).status_code == 400
    granted = admin.post(
        "/overrides", json={"budget": "growth-daily", "until": "2099-01-01T00:00Z", "reason": "launch"}
    )
    assert granted.status_code == 201
    override = granted.json()
    assert override["budget"] == "growth-daily" and override["expires_at"].startswith("2099-01-01T00:00:00")
    other, _ = real.keyring.create(agent="billing-bot", team="growth", environment="test")
    openai.OpenAI(base_url=real.url + "/v1", api_key=other, max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=10
    )  # another key of the team: the budget's override covers it
    _call(real)
    assert [o["id"] for o in admin.get("/overrides").json()] == [override["id"]]
    assert admin.delete(f"/overrides/{override['id']}").status_code == 200
    assert admin.get("/overrides").json() == [] and len(admin.get("/overrides?all=true").json()) == 1
    assert admin.delete("/overrides/ov_nope").status_code == 404
    with pytest.raises(openai.RateLimitError):
        _call(real)
    kinds = [type(e) for e in seen if isinstance(e, OverrideGranted | OverrideRevoked | OverrideUsed)]
    assert kinds == [OverrideGranted, OverrideUsed, OverrideRevoked]
    assert [e.tags.get("override") for e in real.events()] == [None, None, override["id"], override["id"], None]
