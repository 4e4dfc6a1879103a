"""`fiscus.wrap(client, config=...)` on shared state: agents in separate OS processes, each wrapping its own
client from one fiscus.yaml (budget store on the real Redis, ledger on the real PostgreSQL), spend from the same
budgets into the same ledger — and the budget counters end equal to the sum of the ledger's events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

from fiscus.config import load_config
from fiscus.governor import Governor
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos

CALLS_PER_AGENT = 6
AGENT = """
import sys
import openai
import fiscus

config, emulator, agent = sys.argv[1:4]
client = fiscus.wrap(
    openai.OpenAI(base_url=emulator + "/v1", api_key="sk-test", max_retries=0), agent=agent, team="growth",
    config=config,
)
for step in range({calls}):
    client.chat.completions.create(
        model="gpt-4o-mini", max_tokens=32, messages=[{{"role": "user", "content": agent + " step " + str(step)}}]
    )
client.fiscus_gate.governor.close()  # flushes the ledger writer
"""


def test_agents_in_two_processes_share_budgets_and_ledger(
    tmp_path: Path, emulator_url: str, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    (tmp_path / "policy.yaml").write_text(
        textwrap.dedent(
            """
            version: 1
            budgets:
              - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}
            """
        ),
        encoding="utf-8",
    )
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            ledger: "{postgres_url}"
            budget_store: "{redis_url}?prefix={redis_prefix}"
            policy: policy.yaml
            guards: {{state: "{redis_url}?prefix={redis_prefix}", postmortem_dir: postmortems}}
            """
        ),
        encoding="utf-8",
    )
    script = tmp_path / "agent.py"
    script.write_text(AGENT.format(calls=CALLS_PER_AGENT), encoding="utf-8")
    agents = [
        subprocess.Popen([sys.executable, str(script), str(config), emulator_url, name], stderr=subprocess.PIPE)
        for name in ("researcher", "writer")
    ]
    for proc in agents:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    with open_ledger(postgres_url) as ledger:
        events = list(ledger.events())
    assert sorted(e.attribution.agent for e in events) == ["researcher"] * 6 + ["writer"] * 6
    assert all(e.status == "ok" and e.attribution.team == "growth" and e.cost.total > 0 for e in events)

    governor = Governor.from_config(load_config(config))
    try:
        (status,) = governor.status()
    finally:
        governor.close()
    assert status.reserved.nanos == status.reserved.requests == 0
    assert status.spent.requests == 2 * CALLS_PER_AGENT
    assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in events)
    assert status.spent.tokens == sum(e.usage.total_tokens for e in events)
    assert sum((e.cost.total for e in events), Decimal(0)) > 0
