"""The `guards:` section of fiscus.yaml: validation with file and field, and what it builds (registries,
loop checks, post-mortems, the shared state) for the gateway, the SDK and `fiscus serve`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.config import FiscusConfig, load_config
from fiscus.engine.decision import Action
from fiscus.errors import ConfigError
from fiscus.guards import BreakerConfig, LoopConfig
from fiscus.guards.settings import GuardsConfig
from fiscus.usage.wire import WireFormat

GUARDS = """
budget_store: sqlite:///{tmp}/budgets.db
ledger: sqlite:///{tmp}/ledger.db
keys: sqlite:///{tmp}/keys.db
guards:
  breakers:
    global: {{cooldown_s: 120, spend_rate_k: 4, error_rate: null}}
    per_agent: {{cooldown_s: 60, half_open_probes: 2}}
    agents:
      researcher: {{cooldown_s: 5}}
    on_open: block
  loops: {{repeat_tool_calls: 4, repeat_window: 6, max_steps: 40, action: raise}}
  postmortem_dir: pm
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "fiscus.yaml"
    path.write_text(text.format(tmp=folder), encoding="utf-8")
    return path


def test_a_guards_section_builds_breakers_loops_and_postmortems(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GUARDS))
    guards = config.guards
    assert guards.postmortem_dir == tmp_path / "pm"  # relative to the file
    assert guards.state_url(config.budget_store) == f"sqlite:///{tmp_path / 'breakers.db'}"
    assert guards.loop_config() == LoopConfig(repeat_tool_calls=4, repeat_window=6, max_steps=40, action="raise")
    registry = guards.breaker_registry(budget_store=config.budget_store)
    try:
        assert registry.config == BreakerConfig(cooldown_s=120, spend_rate_k=Decimal(4), error_rate=None)
        assert registry.config_for("agent:writer") == BreakerConfig(cooldown_s=60, half_open_probes=2)
        assert registry.config_for("agent:researcher") == BreakerConfig(cooldown_s=5, half_open_probes=2)
        event = registry.trip("researcher", "loop", "ping-pong", state={"session": "s-1", "steps": 12})
        saved = json.loads(Path(str(event.postmortem_path)).read_text())
        assert Path(str(event.postmortem_path)).parent == tmp_path / "pm"
        assert saved["session"] == {"session": "s-1", "steps": 12} and saved["scope"] == "agent:researcher"
        record = registry.breaker("agent:researcher").to_record()
        assert record.reopens_at == record.since + 5  # the named agent's cooldown
    finally:
        registry.close()


def test_postmortems_are_on_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = FiscusConfig().guards.breaker_registry(budget_store="memory://")
    event = registry.trip("a", "budget_exhausted", "team budget exhausted", state={"session": "run-7"})
    path = Path(str(event.postmortem_path))
    assert path.parent == Path(".fiscus/postmortems") and path.exists()
    assert json.loads(path.read_text())["session"] == {"session": "run-7"}
    alone = Path(str(registry.trip("b", "loop", "no session").postmortem_path))  # the trip alone, no session
    assert json.loads(alone.read_text())["session"] is None


def test_defaults_match_the_guards_own() -> None:
    guards = GuardsConfig()
    assert guards.loop_config() == LoopConfig()
    global_, per_agent, named = guards.breakers.registry_configs()
    assert global_ == per_agent == BreakerConfig() and named == {}
    assert guards.breakers.on_open == "partial" and guards.state_url("memory://") == "memory://"
    assert not guards.guard_overrides() and not guards.guard_overrides().breaker("agent:a")  # none overridable


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("breakers: {global: {spend_rate_k: 0}}", "breakers.global.spend_rate_k: Input should be greater than 0"),
        ("breakers: {on_open: ignore}", "guards.breakers.on_open: Input should be 'partial' or 'block'"),
        ("breakers: {per_agent: {min_calls: 30}}", "min_calls (30) cannot exceed error_window (20)"),
        ("breakers: {agents: {r: {error_rate: 2}}}", "guards.breakers.agents.r.error_rate: Input should be less"),
        ("breakers: {agents: {r: {min_calls: 40}}}", "guards.breakers: Value error, agents.r: min_calls (40) cannot"),
        ("breakers: {sometimes: true}", "guards.breakers.sometimes: Extra inputs are not permitted"),
        ("loops: {action: shout}", "guards.loops.action: Input should be 'warn', 'stop' or 'raise'"),
        ("loops: {repeat_tool_calls: 9}", "repeat_tool_calls (9) cannot exceed repeat_window"),
        ("loops: {similarity: 0}", "guards.loops.similarity: Input should be greater than 0"),
        ("state: etcd://x", "guards.state: Value error, unknown breaker state URL 'etcd://x'"),
        ("state: sqlite://b.db", "guards.state: Value error, write sqlite:///relative/path.db"),
        (
            "overridable: [spend_rate]",
            "guards.overridable: Value error, unknown overridable refusal 'spend_rate'; "
            "known: global_spend_rate, agent_spend_rate, key_error_rate, loop",
        ),
        (
            "overridable: [loop, model_error_rate]",
            "guards.overridable: Value error, a model's error-rate breaker is "
            "never overridable: it is open because the provider is failing (answered as an outage, 503)",
        ),
    ],
)
def test_bad_settings_name_the_file_and_field(tmp_path: Path, section: str, expected: str) -> None:
    path = write(tmp_path, "guards:\n  " + section.replace("{", "{{").replace("}", "}}") + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_create_app_guards_from_the_config_and_two_workers_agree(tmp_path: Path) -> None:
    """Two apps from one config stand for two gateway workers: a trip in one refuses calls in the other."""
    from fiscus.gateway.app import create_app

    config = load_config(write(tmp_path, GUARDS))
    one, two = (create_app(config).state.gateway.guards for _ in range(2))
    try:
        assert one.on_breaker_open is Action.BLOCK and one.loops.action == "raise" and one.loops.max_steps == 40
        assert one.breakers.postmortem_dir == tmp_path / "pm"
        writer = Attribution(agent="writer")
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        assert two.check(writer, WireFormat.OPENAI_CHAT, body) is None
        one.breakers.trip("writer", "spend_rate", "spend this hour is 5 × the median")
        two.breakers.sync()  # what its next check does once refresh_s (0.5 s) has passed
        refusal = two.check(writer, WireFormat.OPENAI_CHAT, body)
        assert refusal is not None and refusal.action is Action.BLOCK and refusal.code == "breaker_open"
        assert "agent:writer circuit breaker is open: spend this hour is 5 × the median" in refusal.message
        assert two.open_breakers() == {"global": False, "agent:writer": True}  # the fiscus_breaker_open gauge
    finally:
        one.breakers.close()
        two.breakers.close()


def test_the_sdk_default_takes_guards_from_its_config(tmp_path: Path) -> None:
    from fiscus.sdk.runtime import breakers_for, default_governor, loops_for

    path = write(tmp_path, GUARDS)
    governor = default_governor(path)
    registry = breakers_for(governor)
    assert registry is breakers_for(governor)  # one registry per governor, shared by its clients
    assert registry.state is not None and registry.state.url == f"sqlite:///{tmp_path / 'breakers.db'}"
    assert registry.config_for("agent:researcher").cooldown_s == 5 and registry.postmortem_dir == tmp_path / "pm"
    assert loops_for(governor) == LoopConfig(repeat_tool_calls=4, repeat_window=6, max_steps=40, action="raise")
    (tmp_path / "plain").mkdir()
    plain = write(tmp_path / "plain", "ledger: sqlite:///{tmp}/ledger.db\n")
    assert loops_for(default_governor(plain)) is None  # no loops in the file: the SDK's own default stays


def test_serve_refuses_workers_without_shared_breaker_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "budget_store: sqlite:///{tmp}/budgets.db\nguards: {{state: 'memory://'}}\n")
    assert main(["serve", "--config", str(path), "--workers", "2"]) == 2
    assert capsys.readouterr().err == (
        "fiscus: error: several workers need shared breaker state: set guards.state to sqlite:/// or redis://\n"
    )


def test_the_sdk_shares_its_breakers_beside_the_ledger_unless_told_otherwise() -> None:
    ledger = "sqlite:///.fiscus/ledger.db"
    assert GuardsConfig().sdk_state_url("memory://", ledger) == "sqlite:///.fiscus/breakers.db"
    assert GuardsConfig().sdk_state_url("sqlite:///b/budgets.db", ledger) == "sqlite:///b/breakers.db"
    assert GuardsConfig().sdk_state_url("redis://r:6379/0", ledger) == "redis://r:6379/0"
    assert GuardsConfig().sdk_state_url("memory://", "postgresql://db/x") == "memory://"  # no file to sit beside
    assert GuardsConfig().sdk_state_url("memory://", "sqlite:///:memory:") == "memory://"
    assert GuardsConfig(state="memory://").sdk_state_url("memory://", ledger) == "memory://"  # the opt-out
