"""The operator's controls over HTTP: GET /admin/breakers and POST /admin/breakers/{name}/reset on a breaker a
burst of upstream failures opened; GET /admin/policy and POST /admin/policy/reload with a good file (it takes
effect and is recorded) and a broken one (the old policy stays, 422 and the log say why)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from fiscus.events.policy_event import PolicyEventKind
from fiscus.guards import BreakerConfig
from fiscus.ledger import open_ledger
from tests.gateway.conftest import Real, serve_real

MESSAGES = [{"role": "user", "content": "Find the overdue invoices."}]
POLICY = """
version: 1
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 100}
"""
THREE_REQUESTS = """
version: 1
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {requests: 3}
    thresholds:
      - {at: 1.0, action: block}
"""
ADMIN = {"authorization": "Bearer admin-secret"}


@pytest.fixture
def real(tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Real]:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    config = BreakerConfig(error_rate=0.5, error_window=4, min_calls=4, spend_rate_k=None, cooldown_s=300)
    store = f"sqlite:///{tmp_path}/budget.db"
    gen = serve_real(tmp_path, emulator_url, POLICY, store, breakers=config, on_breaker_open="block")
    yield next(gen)
    next(gen, None)


def test_list_and_reset_a_breaker(real: Real) -> None:
    failing = real.openai(default_headers={"x-emulator-error": "503"})
    for _ in range(4):
        with pytest.raises(openai.APIStatusError):
            failing.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError) as refused:  # open: an outage, no provider reached
        real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert refused.value.status_code == 503
    assert httpx.get(real.url + "/admin/breakers").status_code == 401
    rows = {r["name"]: r for r in httpx.get(real.url + "/admin/breakers", headers=ADMIN).json()}
    opened = rows["model:openai/gpt-4o-mini"]
    assert opened["state"] == "open" and opened["reason"] == "error_rate" and opened["trips"] == 1
    assert opened["window_calls"] == 4 and opened["window_failures"] == 4 and opened["reopens_at"]
    assert rows["global"]["state"] == "closed"

    missing = httpx.post(real.url + "/admin/breakers/model:nope/reset", headers=ADMIN)
    assert missing.status_code == 404 and "no breaker named 'model:nope'" in missing.json()["detail"]
    reset = httpx.post(real.url + "/admin/breakers/model:openai%2Fgpt-4o-mini/reset", headers=ADMIN)
    assert reset.status_code == 200 and reset.json()["state"] == "closed"
    served = real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert served.choices[0].message.content
    rows = {r["name"]: r for r in httpx.get(real.url + "/admin/breakers", headers=ADMIN).json()}
    assert rows["model:openai/gpt-4o-mini"]["state"] == "closed"
    assert rows["model:openai/gpt-4o-mini"]["window_failures"] == 0  # its figures started again


def test_policy_reload_validates_before_it_replaces(real: Real, caplog: pytest.LogCaptureFixture) -> None:
    before = httpx.get(real.url + "/admin/policy", headers=ADMIN).json()
    assert before["version"] == real.governor.policy.version and before["source"].endswith("policy.yaml")
    policy_file = Path(before["source"])

    policy_file.write_text("version: 1\nbudgets:\n  - name: broken\n    window: fortnight\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="fiscus.policy"):
        refused = httpx.post(real.url + "/admin/policy/reload", headers=ADMIN)
    assert refused.status_code == 422
    body = refused.json()
    assert body["ok"] is False and body["version"] == before["version"] and "window" in body["error"]
    assert any("policy reload refused, keeping version" in r.getMessage() for r in caplog.records)
    client = real.openai()
    for _ in range(2):  # still the roomy policy: both served
        assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices

    policy_file.write_text(THREE_REQUESTS, encoding="utf-8")
    taken = httpx.post(real.url + "/admin/policy/reload", headers=ADMIN).json()
    assert taken["ok"] and taken["changed"] and taken["previous"] == before["version"]
    assert taken["version"] != before["version"] == taken["previous"]
    assert httpx.get(real.url + "/admin/policy", headers=ADMIN).json()["version"] == taken["version"]
    # The new policy counts the day's requests so far (two): one more is served, the next refused.
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    again = httpx.post(real.url + "/admin/policy/reload", headers=ADMIN).json()
    assert again["ok"] and not again["changed"]
    with open_ledger(real.ledger_url) as ledger:
        kinds = [(p.kind, p.version) for p in ledger.policy_events()]
    assert kinds == [(PolicyEventKind.START, before["version"]), (PolicyEventKind.RELOAD, taken["version"])]
