"""What the governor puts in the audit trail: the policy it starts with, and its version on every call."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fiscus.attribution import Attribution
from fiscus.audit import audit_records, verify
from fiscus.audit.export import write_csv
from fiscus.config import load_config
from fiscus.governor import CallRequest, Governor
from fiscus.ledger import open_ledger
from fiscus.policy.load import load_policy
from fiscus.usage import Usage

from .test_from_config import write_config

POLICY = """
budgets:
  - name: team
    scope: {team: growth}
    window: day
    limit: {usd: 0.2}
    thresholds:
      - {at: 1.0, action: block}
"""
CALL = CallRequest("local", "house-model", Attribution(team="growth"), input_tokens=10_000, max_tokens=1000)
USAGE = Usage(input_tokens=10_000, output_tokens=500)  # $0.125 at the configured prices


def test_the_policy_version_is_on_record(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, policy=POLICY))
    version = load_policy(tmp_path / "policy.yaml").version
    governor = Governor.from_config(config)
    try:
        governor.settle(governor.admit(CALL), USAGE)  # spends past the limit
        refused = governor.admit(CALL)
        assert not refused.decision.calls_model
        governor.settle(refused, None)
    finally:
        governor.close()
    with open_ledger(config.ledger) as ledger:
        (policy,) = ledger.policy_events()
        assert policy.version == version and policy.source and policy.source.endswith("policy.yaml")
        events = list(ledger.events())
        assert [e.policy_version for e in events] == [version] * 2
        assert verify(ledger).ok
        out = io.StringIO()
        assert write_csv(audit_records(ledger), out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["record"] for r in rows] == ["policy_start", "call", "call"]
    assert [r["decision"] for r in rows[1:]] == ["allow", "block"]
    assert rows[1]["cost_usd"] == "0.125" and {r["policy_version"] for r in rows} == {version}


def test_the_version_follows_the_rules_not_the_layout(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POLICY, encoding="utf-8")
    reordered = """# the same rules, keys in another order and flow style
budgets:
  - {window: day, limit: {usd: 0.2}, name: team, scope: {team: growth},
     thresholds: [{action: block, at: 1.0}]}
"""
    (tmp_path / "b.yaml").write_text(reordered, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(POLICY.replace("0.2}", "0.21}"), encoding="utf-8")
    a, b, c = (load_policy(tmp_path / f"{n}.yaml").version for n in "abc")
    assert a == b and a != c and a is not None and len(a) == 16
