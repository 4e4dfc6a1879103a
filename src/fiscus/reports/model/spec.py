"""The workload spec `fiscus model` reads: agents (each a task class), how their runs unfold, and the workflows
that start them, at what volume. Validated field by field; an error names the file and the field.

```yaml
prices_at: 2026-12-01        # the catalogue date (default: today)
agents:
  researcher:
    task_class: research     # default: the agent's name
    model: claude-sonnet-4-6 # or routing: {claude-haiku-4-5: 70, claude-sonnet-4-6: 20, claude-opus-4-6: 10}
    steps: {p50: 10, p95: 20}
    system_prompt: 4000      # the stable prefix, sent on every call
    user_input: 300          # tokens added per step ...
    tool_results: {p50: 3000, p95: 12000}
    output: {p50: 400, p95: 1500}
    context: full            # none | {window: 30000} | {summary: 0.2}
    retries: {rate: 0.05, max: 2}
    cache: {hit_rate: 0.7}   # or {computed: true, history: true}
    subagents: [{agent: searcher, count: 3, after_step: 1, inherit_context: true}]
workflows:
  competitor-scan: {agent: researcher, runs_per_day: 100}
```
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from fiscus.config import describe_validation_error, read_yaml
from fiscus.errors import ConfigError
from fiscus.reports.model.distribution import ONE, ZERO, Amount, Distribution

_MAX_DEPTH = 6  # subagents of subagents…: deeper than this is a spec mistake, not a workload


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContextSpec(_Strict):
    """What a step carries from the steps before it: everything (`full`), nothing (`none`), the most recent
    `window` tokens, or each step's tokens shrunk to `summary` of their size (structured summaries)."""

    keep: Literal["full", "none", "window", "summary"] = "full"
    window: int | None = Field(default=None, gt=0)
    summary: Decimal | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _parameter_fits(self) -> ContextSpec:
        if (self.keep == "window") != (self.window is not None):
            raise ValueError("a window context is written {window: <tokens>}")
        if (self.keep == "summary") != (self.summary is not None):
            raise ValueError("a summarised context is written {summary: <share kept, 0-1>}")
        return self


def _context_from(value: Any) -> Any:
    if value in ("full", "none"):
        return {"keep": value}
    if isinstance(value, dict) and "keep" not in value and len(value) == 1:
        return {"keep": next(iter(value)), **value}
    if isinstance(value, str):
        raise ValueError(f"unknown context {value!r}; use full, none, {{window: N}} or {{summary: 0.2}}")
    return value


class RetrySpec(_Strict):
    """Each call is sent again (same input, new output, both billed) with probability `rate`, up to `max` times."""

    rate: Decimal = Field(ge=0, lt=1)
    max: int = Field(default=2, ge=1, le=10)


def _retries_from(value: Any) -> Any:
    return {"rate": value} if isinstance(value, int | float | str) and not isinstance(value, bool) else value


class CacheSpec(_Strict):
    """Prompt caching. Either an assumed `hit_rate` (the share of calls that find their cacheable prefix in the
    cache; the others write it) or `computed` from the stable prefix: warm across runs when the agent's calls come
    more often than the cache's lifetime, else written by a run's first call and read by the rest. `history`:
    the carried conversation is cached too (a breakpoint at the end of each call; full context only)."""

    hit_rate: Decimal | None = Field(default=None, ge=0, le=1)
    computed: bool = False
    history: bool = False
    ttl: Literal["5m", "1h"] = "5m"
    # Shorter prefixes are not cached; default: the model's documented minimum (shaping.cache_minimums).
    min_tokens: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> CacheSpec:
        if (self.hit_rate is None) == (not self.computed):
            raise ValueError("give hit_rate (an assumption) or computed: true, not both")
        return self

    @property
    def ttl_seconds(self) -> int:
        return 300 if self.ttl == "5m" else 3600


class SubagentSpec(_Strict):
    agent: str
    count: Amount = ONE
    after_step: int = Field(default=1, ge=1, description="the parent step after which they start")
    inherit_context: bool = True


class AgentSpec(_Strict):
    task_class: str | None = Field(default=None, min_length=1)
    provider: str | None = None
    model: str | None = None
    routing: dict[str, Decimal] | None = None
    steps: Amount = ONE
    system_prompt: int = Field(default=0, ge=0)
    user_input: Amount = ZERO
    tool_results: Amount = ZERO
    output: Amount = ZERO
    context: Annotated[ContextSpec, BeforeValidator(_context_from)] = ContextSpec()
    retries: Annotated[RetrySpec | None, BeforeValidator(_retries_from)] = None
    cache: CacheSpec | None = None
    subagents: list[SubagentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_model_choice(self) -> AgentSpec:
        if (self.model is None) == (self.routing is None):
            raise ValueError("give model (one model) or routing (a mix: {model: weight})")
        if self.routing is not None and (not self.routing or any(w <= 0 for w in self.routing.values())):
            raise ValueError("routing: expected {model: weight} with positive weights")
        return self

    @field_validator("steps")
    @classmethod
    def _at_least_one(cls, steps: Distribution) -> Distribution:
        if steps.constant == 0:
            raise ValueError("a run has at least one step")
        return steps

    def mix(self) -> dict[str, Decimal]:
        """The models this agent's calls go to, each with its share (summing to exactly 1)."""
        if self.model is not None:
            return {self.model: Decimal(1)}
        assert self.routing is not None
        total = sum(self.routing.values())
        return {model: weight / total for model, weight in self.routing.items()}


class WorkflowSpec(_Strict):
    agent: str
    runs_per_day: Decimal = Field(gt=0)


class WorkloadSpec(_Strict):
    version: Literal[1] = 1
    prices_at: date | None = None
    days: int = Field(default=30, ge=1, le=366, description="days in the month the figures are projected over")
    samples: int = Field(default=2000, ge=20, le=200_000, description="simulated runs per workflow")
    seed: int = 0
    provider: str = "anthropic"
    agents: dict[str, AgentSpec] = Field(min_length=1)
    workflows: dict[str, WorkflowSpec] = Field(min_length=1)

    def task_class(self, agent: str) -> str:
        return self.agents[agent].task_class or agent

    def provider_of(self, agent: str) -> str:
        return self.agents[agent].provider or self.provider


def load_spec(path: str | Path, *, changes: dict[str, Any] | None = None) -> WorkloadSpec:
    """Read and check a spec file; `changes` (dotted field → value) replace fields first (a sweep's values)."""
    path = Path(path)
    data = read_yaml(path)
    for dotted, value in (changes or {}).items():
        _set(data, dotted, value, path)
    return parse_spec(data, source=path)


def parse_spec(data: dict[str, Any], *, source: Path | str = "<spec>") -> WorkloadSpec:
    path = Path(source)
    try:
        spec = WorkloadSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None
    _check_references(spec, str(source))
    return spec


def _set(data: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    parts = dotted.split(".")
    node: Any = data
    for index, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            raise ConfigError(f"{path}: {'.'.join(parts[: index + 1])}: no such section to change")
        node = child
    node[parts[-1]] = value


def _check_references(spec: WorkloadSpec, where: str) -> None:
    known = ", ".join(sorted(spec.agents))
    for name, workflow in spec.workflows.items():
        if workflow.agent not in spec.agents:
            raise ConfigError(f"{where}: workflows.{name}.agent: unknown agent {workflow.agent!r}; agents: {known}")
    for name, agent in spec.agents.items():
        for index, sub in enumerate(agent.subagents):
            if sub.agent not in spec.agents:
                raise ConfigError(
                    f"{where}: agents.{name}.subagents.{index}.agent: unknown agent {sub.agent!r}; agents: {known}"
                )
    for name in spec.agents:
        _check_depth(spec, name, (), where)


def _check_depth(spec: WorkloadSpec, name: str, chain: tuple[str, ...], where: str) -> None:
    if name in chain:
        loop = " -> ".join((*chain[chain.index(name) :], name))
        raise ConfigError(f"{where}: agents.{chain[-1]}.subagents: an agent cannot start itself ({loop})")
    if len(chain) >= _MAX_DEPTH:
        raise ConfigError(f"{where}: agents.{name}.subagents: nested deeper than {_MAX_DEPTH} levels")
    for sub in spec.agents[name].subagents:
        _check_depth(spec, sub.agent, (*chain, name), where)
