"""How tight reservations are, and what counting costs: reserved / settled on realistic requests, the utilisation a
sequential agent reaches before its first non-allow decision, and the cost per call of each estimator.

The requests go through the real doors' description (`usage.bounds.input_fields`) and the real `Governor` on the
memory store; a stand-in provider bills input as the o200k_base tokenizer counts the request (bundled by
bpe-openai; characters / 4 when it is not installed) and output as drawn. Baseline, measured in the same run: the
old worst case (every input token at the dearest price of any tier, cache writes included, no calibration).
The sequential agent runs twice, byte bound only and counted near the limit (`Decision.count_helps`: the doors
ask Anthropic's count_tokens; here the stand-in's own count), each against its ceiling: what an admitter that
knew every step's exact cost in advance reaches on the same steps.

Measured 2026-12-06 (seed 7): median reserved / settled 1.208; utilisation counted / byte bound only / ceiling:
$5 98.2 / 98.2 / 98.2 %, $1 99.7 / 92.5 / 99.7 %, $0.20 85.9 / 85.9 / 85.9 %, $0.20 from 11.7k tokens
99.9 / 78.0 / 99.9 %.

    .venv/bin/python bench/reservations.py [--steps 30] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.engine.request import CallRequest
from fiscus.governor import Governor
from fiscus.money import to_nanos
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store
from fiscus.usage import Usage, WireFormat, estimate
from fiscus.usage.bounds import input_fields, request_bound
from fiscus.usage.exact import count_bound

_TEXT = """the a of to and in is it for on with as at by we our this that be are was from or an not can budget
agent pricing tokens cache window reserve settle ledger provider model tier research report customer invoice retry
context summary workflow analysis compare source evidence quarter revenue"""
WORDS = _TEXT.split()


def prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


_BILLER = estimate.bundled_encoder("o200k_base")


def billed_input(body: dict[str, Any], fmt: WireFormat) -> int:
    """What the stand-in provider bills: o200k_base tokens of every text, plus 3 a message and 3 a request."""
    texts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in ("role", "type", "cache_control"):
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for name in ("system", "messages"):
        walk(body.get(name))
    count = (lambda t: len(_BILLER.encode(t))) if _BILLER is not None else estimate.heuristic_tokens
    return 3 + 3 * len(body.get("messages") or ()) + sum(count(t) for t in texts)


Scenario = Callable[[random.Random, int], tuple[str, str, WireFormat, dict[str, Any], int]]


def short_chat(rng: random.Random, step: int) -> tuple[str, str, WireFormat, dict[str, Any], int]:
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 300,
        "messages": [{"role": "system", "content": prose(rng, 30)}, {"role": "user", "content": prose(rng, 25)}],
    }
    return "openai", "gpt-4o-mini", WireFormat.OPENAI_CHAT, body, rng.randint(180, 260)


def agent_step(rng: random.Random, step: int) -> tuple[str, str, WireFormat, dict[str, Any], int]:
    results = [{"role": "user", "content": prose(rng, 1_000)} for _ in range(10)]  # ~13k tokens of tool results
    body = {"model": "claude-sonnet-4-6", "max_tokens": 800, "messages": results}
    return "anthropic", "claude-sonnet-4-6", WireFormat.ANTHROPIC, body, rng.randint(550, 750)


def opus_step(rng: random.Random, step: int) -> tuple[str, str, WireFormat, dict[str, Any], int]:
    body = {
        "model": "claude-opus-4-6",
        "max_tokens": 2_000,
        "messages": [{"role": "user", "content": prose(rng, 11_500)} for _ in range(10)],  # ~150k tokens
    }
    return "anthropic", "claude-opus-4-6", WireFormat.ANTHROPIC, body, rng.randint(1_400, 1_900)


_PLAYBOOK = prose(random.Random(1), 38_000)  # ~50k tokens, the same on every call


def cached_prompt(rng: random.Random, step: int) -> tuple[str, str, WireFormat, dict[str, Any], int]:
    system = [{"type": "text", "text": _PLAYBOOK, "cache_control": {"type": "ephemeral"}}]
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 500,
        "system": system,
        "messages": [{"role": "user", "content": prose(rng, 400)}],
    }
    return "anthropic", "claude-sonnet-4-6", WireFormat.ANTHROPIC, body, rng.randint(300, 450)


def governor(policy: dict[str, Any]) -> Governor:
    return Governor(policy=parse_policy(policy), store=open_store("memory://"), catalogue=PriceCatalogue())


def call_of(provider: str, model: str, fmt: WireFormat, body: dict[str, Any], agent: str) -> CallRequest:
    writes = fmt is WireFormat.ANTHROPIC and "cache_control" in str(body.get("system"))
    fields = input_fields(body, fmt, writes_cache=writes)
    return CallRequest(provider, model, Attribution(agent=agent), max_tokens=body["max_tokens"], **fields)


def usage_of(body: dict[str, Any], fmt: WireFormat, output: int, cached: int, first: bool) -> Usage:
    total = billed_input(body, fmt)
    if not cached:
        return Usage(input_tokens=total, output_tokens=output)
    if first:  # the first call writes the marked prefix (5 min TTL), later ones read it
        return Usage(input_tokens=total - cached, cache_write_5m_tokens=cached, output_tokens=output)
    return Usage(input_tokens=total - cached, cache_read_tokens=cached, output_tokens=output)


def ratios(name: str, scenario: Scenario, steps: int, seed: int) -> tuple[float, float, float]:
    """(first call, median after the first 5, old worst case's median) of reserved / settled."""
    gov = governor({"budgets": [{"name": "all", "limit": {"usd": 100_000}}]})
    rng = random.Random(seed)
    got, old = [], []
    cached = billed_input({"system": _PLAYBOOK}, WireFormat.ANTHROPIC) - 3 if scenario is cached_prompt else 0
    for step in range(steps):
        provider, model, fmt, body, output = scenario(rng, step)
        request = call_of(provider, model, fmt, body, name)
        admission = gov.admit(request)
        usage = usage_of(body, fmt, output, cached, step == 0)
        event = gov.settle(admission, usage)
        settled = to_nanos(event.cost.total)
        got.append(admission.decision.reserve.nanos / settled)  # type: ignore[union-attr]
        sheet = gov.engine.sheet(provider, model, False, gov.now())
        worst = sheet.worst_case(request.input_tokens, body["max_tokens"], cache_writes=request.cache_writes)
        old.append(to_nanos(worst) / settled)
    gov.close()
    return got[0], statistics.median(got[5:]), statistics.median(old[5:])


def utilisation(
    limit: str, steps: int, seed: int, start_words: int, words_per_step: int, *, count: bool = True
) -> tuple[float, int, str, list[int]]:
    """A sequential research agent whose context grows each step, on a budget that only stops at 100 %: the
    share of the limit spent on the requested model before the first decision that is not allow, and what each
    allowed step cost (nanos). `count`: the door can have the provider count a request exactly, as the gateway
    and the SDK do for Anthropic (`Decision.count_helps`); here the stand-in's own count."""
    policy = {"budgets": [{"name": "agent-day", "scope": {"agent": "researcher"}, "window": "day",
                           "limit": {"usd": limit}, "thresholds": [{"at": 1.0, "action": "partial"}]}]}  # fmt: skip
    gov = governor(policy)
    rng = random.Random(seed)
    history: list[dict[str, Any]] = [{"role": "user", "content": prose(rng, start_words)}]
    why, n, costs = "never stopped", 0, []
    for n in range(1, steps + 1):
        body = {"model": "claude-sonnet-4-6", "max_tokens": 1_000, "messages": list(history)}
        request = replace(call_of("anthropic", "claude-sonnet-4-6", WireFormat.ANTHROPIC, body, "researcher"),
                          countable=count)  # fmt: skip
        admission = gov.admit(request)
        if admission.decision.count_helps:
            counted = billed_input(body, WireFormat.ANTHROPIC)
            admission = gov.admit(request.counted(counted, count_bound(counted)))
        decision = admission.decision
        if decision.action is not Action.ALLOW or decision.model != "claude-sonnet-4-6":
            gov.settle(admission, None)
            why = f"{decision.action} at step {n}"
            break
        reply = prose(rng, 450)
        output = min(600, decision.max_tokens)  # a clamped cap below the answer cuts it: not equal work
        billed = Usage(input_tokens=billed_input(body, WireFormat.ANTHROPIC), output_tokens=output)
        event = gov.settle(admission, billed)
        if output < 600:
            why = f"max_tokens clamped to {decision.max_tokens} at step {n}"
            break
        costs.append(to_nanos(event.cost.total))
        history += [{"role": "assistant", "content": reply}, {"role": "user", "content": prose(rng, words_per_step)}]
    (status,) = gov.status()
    gov.close()
    assert status.spent.nanos <= to_nanos(Decimal(limit)), "the budget was exceeded"
    return float(Decimal(sum(costs)) / Decimal(to_nanos(Decimal(limit)))), n, why, costs


def oracle_share(limit: str, steps: int, seed: int, start_words: int, words_per_step: int) -> float:
    """The most any admitter can reach without passing the limit: one that knew each step's exact cost in
    advance and admitted steps while their sum fits (the same agent, replayed on an unbounded budget)."""
    _, _, _, costs = utilisation("1000000", steps, seed, start_words, words_per_step)
    cap, spent = to_nanos(Decimal(limit)), 0
    for cost in costs:
        if spent + cost > cap:
            break
        spent += cost
    return spent / cap


def per_call_us(fn: Callable[[], object], repeat: int = 20) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"billed input counted by {'o200k_base (bpe-openai)' if _BILLER else 'chars/4'}; "
          f"estimator {estimate.estimator_name()}")  # fmt: skip
    print(f"{'request':<26}{'first call':>12}{'median':>10}{'old worst case':>16}{'  old/new':>10}")
    medians = []
    for name, scenario in (
        ("short chat", short_chat),
        ("13k-token agent step", agent_step),
        ("150k-token Opus step", opus_step),
        ("cached prompt", cached_prompt),
    ):
        first, median, old = ratios(name, scenario, args.steps, args.seed)
        medians.append(median)
        print(f"{name:<26}{first:>12.3f}{median:>10.3f}{old:>16.3f}{old / median:>9.2f}x")
    print(f"median reserved / settled over the four: {statistics.median(medians):.3f} (target <= 1.25)")
    print()
    print("sequential research agent, claude-sonnet-4-6, context growing each step; stop only at 100 %:")
    print("  (ceiling: what an admitter knowing each step's exact cost reaches; a step that costs more than what")
    print("  remains cannot run on the requested model whatever the estimate)")
    for limit, start, grow in (("5", 2_000, 900), ("1", 2_000, 400), ("0.20", 1_500, 300), ("0.20", 9_000, 200)):
        ceiling = oracle_share(limit, 200, args.seed, start, grow)
        grown = f"+{grow * 1.3 + 600:,.0f} a step"
        print(f"  ${limit:<5} start ~{start * 1.3:,.0f} tokens, {grown}; ceiling {ceiling:.1%}:")
        for count in (False, True):
            share, _, why, _ = utilisation(limit, 200, args.seed, start, grow, count=count)
            label = "counted near the limit" if count else "byte bound only"
            print(f"    {label:<24}{share:>7.1%} used before the first non-allow ({why}), "
                  f"{share / ceiling:.1%} of the ceiling")  # fmt: skip
    print()
    text = prose(random.Random(3), 10_000)  # ~13k tokens of English
    body = {"messages": [{"role": "user", "content": text}]}
    chars = per_call_us(lambda: estimate.heuristic_tokens(text))
    rows = [("chars/4", chars), ("UTF-8 bytes bound", per_call_us(lambda: request_bound(body, "anthropic")))]
    for name in ("o200k_base", "cl100k_base"):
        encoder = estimate.bundled_encoder(name)
        if encoder is not None:
            rows.append((f"{name} (bundled)", per_call_us(lambda e=encoder: e.encode_ordinary(text))))
    print(f"estimator cost per call on a ~13k-token text ({len(text):,} characters):")
    for name, us in rows:
        print(f"  {name:<24}{us:>10.1f} µs   {us / chars:>8.1f}x chars/4")


if __name__ == "__main__":
    main()
