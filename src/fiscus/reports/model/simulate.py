"""The Monte Carlo behind `fiscus model`: each sample is one run of a workflow, step by step, priced with the
catalogue at the spec's date.

A step adds its user input and tool results to what it carries from the steps before (its context), sends the
system prompt + that context + the new tokens, and gets its output, which the next step carries too. A retry
sends the same input again and is billed again. Subagents start after a parent step, each carrying the parent's
context if they inherit it. Token counts are whole numbers from a seeded RNG; every cost is an exact `Decimal`
from the price sheet, so the same spec and seed always give the same figures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from fiscus.errors import ConfigError, PricingError
from fiscus.pricing import PriceCatalogue, PriceSheet
from fiscus.reports.model.spec import AgentSpec, CacheSpec, WorkloadSpec
from fiscus.shaping.cache_minimums import min_cacheable_tokens
from fiscus.usage.model import Usage

_DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class SimCall:
    """One simulated call: `step` counts from 1 within its thread (a retry repeats its step)."""

    model: str
    step: int
    usage: Usage
    cost: Decimal


@dataclass(slots=True)
class Thread:
    """One agent's part of a run (what the ledger records as one session)."""

    agent: str
    task_class: str
    calls: list[SimCall] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return sum((c.cost for c in self.calls), Decimal(0))


@dataclass(slots=True)
class SimRun:
    workflow: str
    threads: list[Thread] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Agent:
    """An agent ready to simulate: its spec, its priced models (cumulative shares for the draw) and whether its
    stable prefix stays in the cache between runs."""

    name: str
    task_class: str
    spec: AgentSpec
    models: tuple[tuple[str, PriceSheet], ...]
    cumulative: tuple[float, ...]
    warm: bool


class Simulator:
    def __init__(self, spec: WorkloadSpec, catalogue: PriceCatalogue, *, source: str = "<spec>") -> None:
        self.spec = spec
        self.catalogue = catalogue
        self.at = prices_moment(spec.prices_at)
        self.calls_per_day = expected_calls_per_day(spec)
        self.agents = {name: self._prepare(name, source) for name in spec.agents}

    def _prepare(self, name: str, source: str) -> _Agent:
        spec = self.spec.agents[name]
        provider = self.spec.provider_of(name)
        field_name = "model" if spec.model is not None else "routing"
        models = []
        cumulative = []
        running = Decimal(0)
        for model, share in spec.mix().items():
            try:
                sheet = self.catalogue.sheet(provider=provider, model=model, at=self.at)
            except PricingError as exc:
                raise ConfigError(f"{source}: agents.{name}.{field_name}: {exc}") from None
            running += share
            models.append((model, sheet))
            cumulative.append(float(running))
        warm = False
        if spec.cache is not None and spec.cache.computed:
            warm = self.calls_per_day.get(name, 0.0) * spec.cache.ttl_seconds >= _DAY_SECONDS
        return _Agent(name, self.spec.task_class(name), spec, tuple(models), tuple(cumulative), warm)

    def run(self, samples: int | None = None, seed: int | None = None) -> dict[str, list[SimRun]]:
        """`samples` runs of every workflow, from one RNG seeded with `seed` (the spec's by default)."""
        rng = random.Random(self.spec.seed if seed is None else seed)
        count = samples or self.spec.samples
        runs: dict[str, list[SimRun]] = {}
        for name, workflow in self.spec.workflows.items():
            runs[name] = []
            for _ in range(count):
                run = SimRun(name)
                self._thread(self.agents[workflow.agent], 0, rng, run)
                runs[name].append(run)
        return runs

    def _thread(self, agent: _Agent, inherited: int, rng: random.Random, run: SimRun) -> None:
        spec = agent.spec
        thread = Thread(agent.name, agent.task_class)
        run.threads.append(thread)
        steps = max(1, spec.steps.sample(rng))
        history = inherited
        cached = 0  # how much of this thread's input the cache holds (a prefix of the next call's input)
        for step in range(1, steps + 1):
            added = spec.user_input.sample(rng) + spec.tool_results.sample(rng)
            carried = history if spec.context.window is None else min(history, spec.context.window)
            sent = spec.system_prompt + carried + added
            attempts = 1 + _retries(spec, rng)
            output = 0
            for _ in range(attempts):
                model, sheet = _draw(agent, rng)
                output = spec.output.sample(rng)
                usage, cached = _cached_usage(agent, model, sent, output, cached, rng)
                thread.calls.append(SimCall(model, step, usage, sheet.cost(usage).total))
            history = _carry(spec, carried, added + output)
            for sub in spec.subagents:
                if min(sub.after_step, steps) == step:  # a run shorter than `after_step` starts them at its end
                    for _ in range(sub.count.sample(rng)):
                        self._thread(self.agents[sub.agent], history if sub.inherit_context else 0, rng, run)


def prices_moment(on: date | None) -> datetime:
    """The moment prices are taken at: noon UTC of the spec's date, or now."""
    return datetime.combine(on, time(12), tzinfo=UTC) if on is not None else datetime.now(UTC)


def expected_calls_per_day(spec: WorkloadSpec) -> dict[str, float]:
    """Each agent's expected calls a day over all workflows (threads per run × calls per thread × runs a day);
    decides whether a computed cache stays warm. Floats: this sizes call rates, never money."""
    threads: dict[str, float] = dict.fromkeys(spec.agents, 0.0)

    def visit(name: str, weight: float) -> None:
        threads[name] += weight
        agent = spec.agents[name]
        for sub in agent.subagents:
            visit(sub.agent, weight * sub.count.mean())

    for workflow in spec.workflows.values():
        visit(workflow.agent, float(workflow.runs_per_day))
    result = {}
    for name, per_day in threads.items():
        agent = spec.agents[name]
        retries = 0.0
        if agent.retries is not None:
            rate = float(agent.retries.rate)
            retries = sum(rate**k for k in range(1, agent.retries.max + 1))
        result[name] = per_day * max(1.0, agent.steps.mean()) * (1 + retries)
    return result


def _retries(spec: AgentSpec, rng: random.Random) -> int:
    if spec.retries is None or not spec.retries.rate:
        return 0
    count = 0
    while count < spec.retries.max and rng.random() < spec.retries.rate:
        count += 1
    return count


def _draw(agent: _Agent, rng: random.Random) -> tuple[str, PriceSheet]:
    if len(agent.models) == 1:
        return agent.models[0]
    point = rng.random()
    for (model, sheet), edge in zip(agent.models, agent.cumulative, strict=True):
        if point < edge:
            return model, sheet
    return agent.models[-1]


def _carry(spec: AgentSpec, carried: int, new: int) -> int:
    keep = spec.context.keep
    if keep == "none":
        return 0
    if keep == "summary":
        assert spec.context.summary is not None
        return carried + int((spec.context.summary * new).to_integral_value())
    return carried + new  # full, or window (capped when the next step sends it)


def _cached_usage(
    agent: _Agent, model: str, sent: int, output: int, cached: int, rng: random.Random
) -> tuple[Usage, int]:
    """The call's input split into uncached, cache reads and writes; and what the cache then holds."""
    cache = agent.spec.cache
    if cache is None:
        return Usage(input_tokens=sent, output_tokens=output), 0
    spec = agent.spec
    history = cache.history and spec.context.keep == "full"
    prefix = sent if history else spec.system_prompt  # what this call's breakpoint caches
    shortest = cache.min_tokens if cache.min_tokens is not None else min_cacheable_tokens(model)
    if shortest is None or prefix < max(shortest, 1):
        return Usage(input_tokens=sent, output_tokens=output), cached
    if cache.hit_rate is not None:
        hit = rng.random() < cache.hit_rate
        readable = (cached or spec.system_prompt) if history else spec.system_prompt
    else:
        hit = bool(cached) or agent.warm
        readable = cached if cached else spec.system_prompt
    read = min(readable, prefix) if hit else 0
    write = prefix - read
    return _usage(sent, read, write, output, cache), prefix


def _usage(sent: int, read: int, write: int, output: int, cache: CacheSpec) -> Usage:
    long_lived = cache.ttl == "1h"
    return Usage(
        input_tokens=sent - read - write,
        cache_read_tokens=read,
        cache_write_5m_tokens=0 if long_lived else write,
        cache_write_1h_tokens=write if long_lived else 0,
        output_tokens=output,
    )
