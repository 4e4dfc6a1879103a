"""The `guards:` section of fiscus.yaml: breakers, loop detection, post-mortems and where breaker state is shared.

```yaml
guards:
  breakers:
    global:    {spend_rate_k: 3, error_rate: 0.5, min_calls: 10, cooldown_s: 300, half_open_probes: 1}
    per_agent: {spend_rate_k: 3}             # each agent's own breaker (default: as global)
    agents:    {researcher: {cooldown_s: 60}} # named agents: only the fields given differ from per_agent
    per_key:   {error_rate: 0.8, min_calls: 50, error_window_s: 120}  # each virtual key's (errors only)
    on_open: partial                          # partial | block: how the gateway answers an open breaker
  loops: {repeat_tool_calls: 3, repeat_window: 5, similarity: 0.6, no_progress_steps: 8, action: stop}
  overridable: [agent_spend_rate, loop]     # refusals a key's granted override passes (default: none)
  postmortem_dir: .fiscus/postmortems         # relative to fiscus.yaml; null: none written
  postmortem_text: false                      # true: post-mortems keep prompt/completion text, not fingerprints
  state: redis://localhost:6379/0?prefix=prod # default: beside the budget store
```

`state` holds the trip records and the account-wide windows (spend per hour, calls and failures per 10 s
bucket over `error_window_s`) every worker and process adds to (`fiscus.guards.windows`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fiscus.guards.breaker import BreakerConfig
from fiscus.guards.loop_state import LoopStates, open_loop_state
from fiscus.guards.loops import LoopConfig
from fiscus.guards.overridable import GuardOverrides, check_kinds
from fiscus.guards.registry import DEFAULT_POSTMORTEM_DIR, BreakerRegistry, key_defaults
from fiscus.guards.state import ACCEPTED, open_breaker_state, state_url_beside
from fiscus.guards.windows import open_breaker_windows


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BreakerSettings(_Section):
    """One breaker. `spend_rate_k`: trip when this hour's spend passes k × the median hourly spend of the past
    `history_hours` (from `min_history_hours` hours with spend on); `error_rate`: trip when that share of the
    last `error_window` calls failed (from `min_calls` on). null turns a trigger off."""

    cooldown_s: float = Field(300.0, ge=0)
    spend_rate_k: Decimal | None = Field(Decimal(3), gt=0)
    min_history_hours: int = Field(3, ge=1)
    history_hours: int = Field(24 * 7, ge=1)
    error_rate: float | None = Field(0.5, gt=0, le=1)
    error_window: int = Field(20, ge=1)
    min_calls: int = Field(10, ge=1)
    half_open_probes: int = Field(1, ge=1)
    error_window_s: float = Field(120.0, gt=0, le=24 * 3600)

    @model_validator(mode="after")
    def _windows_fit(self) -> BreakerSettings:
        if self.min_calls > self.error_window:
            raise ValueError(f"min_calls ({self.min_calls}) cannot exceed error_window ({self.error_window})")
        if self.min_history_hours > self.history_hours:
            raise ValueError("min_history_hours cannot exceed history_hours")
        return self

    def to_config(self) -> BreakerConfig:
        return BreakerConfig(**self.model_dump())


class AgentBreakerSettings(_Section):
    """A named agent's breaker: the fields given here replace those of `per_agent`."""

    cooldown_s: float | None = Field(None, ge=0)
    spend_rate_k: Decimal | None = Field(None, gt=0)
    min_history_hours: int | None = Field(None, ge=1)
    history_hours: int | None = Field(None, ge=1)
    error_rate: float | None = Field(None, gt=0, le=1)
    error_window: int | None = Field(None, ge=1)
    min_calls: int | None = Field(None, ge=1)
    half_open_probes: int | None = Field(None, ge=1)
    error_window_s: float | None = Field(None, gt=0, le=24 * 3600)


_KEY_FIELDS = ("error_rate", "min_calls", "error_window")


class BreakersSettings(_Section):
    global_: BreakerSettings = Field(default_factory=BreakerSettings, alias="global")
    per_agent: BreakerSettings | None = None
    agents: dict[str, AgentBreakerSettings] = Field(default_factory=dict)
    per_key: AgentBreakerSettings | None = None  # a key's breaker counts failed calls: spend rate is not its
    on_open: Literal["partial", "block"] = "partial"

    @model_validator(mode="after")
    def _agents_fit(self) -> BreakersSettings:
        for name, fields in self.agents.items():
            try:
                self._agent(fields)
            except ValidationError as exc:
                raise ValueError(f"agents.{name}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        return self

    def _agent(self, fields: AgentBreakerSettings) -> BreakerSettings:
        base = self.per_agent or self.global_
        return BreakerSettings.model_validate({**base.model_dump(), **fields.model_dump(exclude_unset=True)})

    def registry_configs(self) -> tuple[BreakerConfig, BreakerConfig, dict[str, BreakerConfig]]:
        """(global, per agent, named agents)."""
        per_agent = (self.per_agent or self.global_).to_config()
        named = {name: self._agent(fields).to_config() for name, fields in self.agents.items()}
        return self.global_.to_config(), per_agent, named

    def key_config(self) -> BreakerConfig:
        """Each virtual key's breaker: the global error settings, then `per_key`'s; never on spend rate."""
        fields = self.per_key.model_dump(exclude_unset=True) if self.per_key is not None else {}
        base = key_defaults(self.global_.to_config())
        merged = {**self.global_.model_dump(), **{f: getattr(base, f) for f in _KEY_FIELDS}, **fields}
        merged["error_window"] = max(merged["error_window"], merged["min_calls"])
        return BreakerSettings.model_validate({**merged, "spend_rate_k": None}).to_config()


class LoopSettings(_Section):
    """The loop checks (see `fiscus.guards.loops`); null turns a check off."""

    repeat_tool_calls: int | None = Field(3, ge=2)
    repeat_window: int = Field(5, ge=1)
    similarity: float = Field(0.6, gt=0, le=1)
    near_duplicate_run: int | None = Field(3, ge=2)
    max_steps: int | None = Field(None, ge=1)
    ping_pong_rounds: int | None = Field(2, ge=1)
    no_progress_steps: int | None = Field(8, ge=1)
    no_progress_tokens: int | None = Field(None, ge=1)
    implicit_conversations: bool = True
    action: Literal["warn", "stop", "raise"] = "stop"

    @model_validator(mode="after")
    def _repeats_fit(self) -> LoopSettings:
        if self.repeat_tool_calls is not None and self.repeat_tool_calls > self.repeat_window:
            raise ValueError(f"repeat_tool_calls ({self.repeat_tool_calls}) cannot exceed repeat_window")
        return self

    def to_config(self) -> LoopConfig:
        return LoopConfig(**self.model_dump())


class GuardsConfig(_Section):
    breakers: BreakersSettings = Field(default_factory=BreakersSettings)
    loops: LoopSettings = Field(default_factory=LoopSettings)
    # The guard refusals a key's granted override lets a call past (`fiscus.guards.overridable`); none by default.
    overridable: list[str] = Field(default_factory=list)
    postmortem_dir: Path | None = DEFAULT_POSTMORTEM_DIR
    postmortem_text: bool = False  # opt in to prompt and completion text in post-mortem files
    state: str | None = Field(None, description="memory://, sqlite:///path.db or redis://…; default: beside the store")
    state_refresh_s: float = Field(0.5, gt=0, le=60)
    loop_state_ttl_s: float = Field(3_600, gt=0)  # a shared conversation's loop state expires this long idle

    @field_validator("state")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is None:
            return None
        scheme = urlparse(url).scheme.lower()
        if scheme not in ("memory", "sqlite", "redis", "rediss"):
            raise ValueError(f"unknown breaker state URL {url!r}; accepted: {', '.join(ACCEPTED)}")
        if scheme == "sqlite" and (not url.startswith("sqlite:///") or url == "sqlite:///"):
            raise ValueError(f"write sqlite:///relative/path.db or sqlite:////absolute.db, got {url!r}")
        return url

    @field_validator("overridable")
    @classmethod
    def _known_kinds(cls, names: list[str]) -> list[str]:
        return check_kinds(names)

    def guard_overrides(self) -> GuardOverrides:
        return GuardOverrides(frozenset(self.overridable))

    def state_url(self, budget_store: str) -> str:
        """Where breaker state is shared: `state`, else beside the budget store."""
        return self.state or state_url_beside(budget_store)

    def sdk_state_url(self, budget_store: str, ledger: str) -> str:
        """Where a wrapped client's breakers share their state: `state` when set (`memory://` keeps them in the
        process), else beside the budget store, else — a memory store, as with no fiscus.yaml — `breakers.db`
        beside a SQLite ledger, so every SDK process of one host on the same ledger judges the same account-wide
        figures. Across hosts that takes a Redis store (or `state: redis://…`)."""
        if self.state:
            return self.state
        beside = state_url_beside(budget_store)
        if beside.startswith("memory://") and ledger.startswith("sqlite:///") and ":memory:" not in ledger:
            return state_url_beside(ledger)
        return beside

    def loop_config(self) -> LoopConfig:
        return self.loops.to_config()

    def loop_states(self, budget_store: str, loops: LoopConfig | None = None) -> LoopStates:
        """The loop detectors' state, shared at `state_url(budget_store)` unless that is memory (one worker).
        Close it to release its store."""
        config = loops or self.loop_config()
        url = self.state_url(budget_store)
        store = None if url.startswith("memory://") else open_loop_state(url)
        return LoopStates(config, store, ttl_s=self.loop_state_ttl_s, keep_text=self.postmortem_text)

    def breaker_registry(
        self,
        *,
        budget_store: str,
        config: BreakerConfig | None = None,
        on_event: Callable[[object], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> BreakerRegistry:
        """A registry with these settings, sharing state at `state_url(budget_store)`. `config`, when given,
        is used for every breaker instead of the `breakers` settings. Close it to release its state store."""
        global_, per_agent, named = self.breakers.registry_configs()
        per_key = self.breakers.key_config()
        if config is not None:
            global_, per_agent, named = config, config, {}
        url = self.state_url(budget_store)
        state = open_breaker_state(url)
        try:
            windows = open_breaker_windows(url)
        except BaseException:
            state.close()
            raise
        return BreakerRegistry(
            global_,
            per_agent=per_agent,
            agents=named,
            clock=clock,
            postmortem_dir=self.postmortem_dir,
            on_event=on_event,
            state=state,
            refresh_s=self.state_refresh_s,
            windows=windows,
            per_key=per_key,
            postmortem_text=self.postmortem_text,
        )
