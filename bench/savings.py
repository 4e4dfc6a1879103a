"""Savings at equal work: the seed workloads through the emulator, ungoverned (straight to the provider) and
governed (through the gateway with prompt-cache placement, task-class routes, context windows and the exact
response cache), in one run.

    .venv/bin/python bench/savings.py [--scale 1] [--json]

Workloads, shaped after the seeds:
- research: an agent on Claude Opus 4.6 whose context grows by a 20k-token tool result every step (its task
  class keeps a 30k-token context window: older results shortened, the latest kept whole);
- compliance: a 50k-token stable system prompt (the policy book) and one short question per call, asked of
  Sonnet 4.6 and routed to Haiku 4.5 (the seeds: 80 % of calls on budget models);
- triage: support tickets under a 4k-token system prompt, asked of gpt-5.4 at temperature 0 and routed to
  gpt-5.4-mini, a third of them repeats of an earlier ticket (the response cache answers those);
- fleet: 60/30/10 simple/standard/complex sessions of three growing calls on Claude, a session's first call
  (the intake) always of the standard class;
- a2a: two agents replying to each other — reported apart: what the loop guard refuses is work not done, never
  a saving.
Both runs send the same requests in the same order (equal task count); every governed call must be answered
as the direct one was (a 200, no partial answer) for the run to count (equal answers). Ungoverned cost is what
the provider bills the direct run (OpenAI's own automatic caching included); governed cost is what the ledger
recorded, the summaries' own calls included. Per lever: the saving the ledger attributes to it (each event's
ungoverned cost taken apart, `fiscus.events.savings`), as a share of the whole ungoverned bill, and of what
the lever applied to (the seeds' ranges: caching 60–90 % on cached tokens, routing 40–70 %, context 30–60 %).
Goal: >= 80 % overall at equal work. Calls a budget degraded (a smaller model or a compressed context as the
budget neared its end), refused or partial calls, and response-cache hits are counted apart by name: the first
two are never a saving.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from fiscus.config import FiscusConfig, OptimiseConfig, ProviderConfig
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.savings import LEVERS, Savings
from fiscus.gateway.app import run_gateway_in_thread
from fiscus.keys import KeyClaims, KeyRing, open_key_store
from fiscus.ledger import open_ledger
from fiscus.pricing import PriceCatalogue
from fiscus.usage.detect import usage_from_body
from fiscus.usage.model import Usage

POLICY = """
version: 1
ladders:
  gpt-5.4: [gpt-5.4, gpt-5.4-mini, gpt-5.4-nano]
  claude: [claude-opus-4-6, claude-sonnet-4-6, claude-haiku-4-5]
routes:
  triage: [gpt-5.4-mini]
  compliance: [claude-haiku-4-5]
  simple: [claude-haiku-4-5]
  standard: [claude-sonnet-4-6]
context:
  research: 30000
response_cache:
  triage: {ttl: 1h, max_entries: 10000}
budgets:
  - {name: bench-day, scope: {team: bench}, window: day, limit: {usd: 100000}}
"""
_SYLLABLES = ("ka", "lo", "mi", "ren", "tas", "vel", "dor", "pi", "qua", "sen", "tor", "ul", "bri", "cha", "fen")
VOCABULARY = tuple(a + b for a in _SYLLABLES for b in _SYLLABLES) + tuple(
    ("revenue", "region", "segment", "quarter", "growth", "invoice", "customer", "policy", "approval", "figure")
)


def text(tokens: int, seed: str) -> str:
    """About `tokens` tokens (4 characters each) of varied words drawn from a generator seeded by `seed`: the
    same seed gives the same text (what a prompt cache reuses), another seed other text, as real documents and
    tool results are (text repeated word for word would look like a loop to the loop guard)."""
    draw = random.Random(seed).choice
    words: list[str] = []
    size = 0
    while size < tokens * 4:
        word = draw(VOCABULARY)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[: tokens * 4]


@dataclass(frozen=True, slots=True)
class Call:
    workload: str
    api: str  # "anthropic" or "openai"
    body: dict[str, Any]
    headers: dict[str, str]


def research(tasks: int, steps: int) -> Iterator[Call]:
    tools = [{"name": "fetch", "description": text(1500, "tool"), "input_schema": {"type": "object"}}]
    system = "You are a market research agent. " + text(2000, "research desk")
    for task in range(tasks):
        turns: list[dict[str, Any]] = [{"role": "user", "content": f"Research market {task} in depth."}]
        for step in range(steps):
            body = {"model": "claude-opus-4-6", "max_tokens": 400, "system": system, "tools": tools}
            yield Call("research", "anthropic", {**body, "messages": list(turns)}, _h("research", f"r{task}"))
            use = {"type": "tool_use", "id": f"t{task}_{step}", "name": "fetch", "input": {"page": step}}
            result = json.dumps({"page": step, "rows": [text(18, f"m{task}s{step}r{n}") for n in range(1100)]})
            done = {"type": "tool_result", "tool_use_id": use["id"], "content": result}
            turns += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [done]}]


def compliance(calls: int) -> Iterator[Call]:
    system = "You are the compliance desk. Policy book follows. " + text(50_000, "policy book")
    for n in range(calls):
        body = {"model": "claude-sonnet-4-6", "max_tokens": 300, "system": system}
        question = [{"role": "user", "content": f"Does transaction {n} need a second approval?"}]
        yield Call("compliance", "anthropic", {**body, "messages": question}, _h("compliance", f"c{n}"))


def triage(calls: int) -> Iterator[Call]:
    """Tickets classified at temperature 0; a third of them word for word a ticket seen before (the seeds: 31 %
    of queries resemble an earlier one), as the same customer or the same outage files again."""
    system = "Classify each ticket as billing, bug, feature or other. " + text(4000, "triage playbook")
    distinct = max(1, calls * 2 // 3)
    for n in range(calls):
        ticket = n % distinct
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Ticket #{ticket}: the invoice for order {ticket} shows the wrong VAT."},
        ]
        body = {"model": "gpt-5.4", "max_completion_tokens": 200, "temperature": 0, "messages": messages}
        yield Call("triage", "openai", body, _h("triage", f"t{n}"))


def fleet(sessions: int) -> Iterator[Call]:
    """60 % simple, 30 % standard, 10 % complex sessions; three calls each, the context growing."""
    system = "You are the operations assistant. " + text(6000, "operations manual")
    for n in range(sessions):
        kind = "simple" if n % 10 < 6 else "standard" if n % 10 < 9 else "complex"
        model = "claude-opus-4-6"  # ungoverned, every call goes to the top model
        turns: list[dict[str, Any]] = []
        for step in range(3):
            turns.append({"role": "user", "content": f"Case {n}, step {step}: " + text(2500, f"case {n} {step}")})
            task_class = "standard" if step == 0 else kind  # the intake is always a standard call
            body = {"model": model, "max_tokens": 300, "system": system, "messages": list(turns)}
            yield Call("fleet", "anthropic", body, _h(task_class, f"f{n}"))
            turns.append({"role": "assistant", "content": f"Noted for case {n}, step {step}."})


def a2a(rounds: int) -> Iterator[Call]:
    last = "Please double-check the plan and send it back with your corrections. " * 40
    for n in range(rounds):
        agent = "planner" if n % 2 else "critic"
        body = {"model": "claude-haiku-4-5", "max_tokens": 300, "messages": [{"role": "user", "content": last}]}
        yield Call("a2a", "anthropic", body, {**_h("debate", "a2a-1"), "x-fiscus-agent": agent})


def _h(task_class: str, session: str) -> dict[str, str]:
    return {"x-fiscus-task-class": task_class, "x-fiscus-session": session}


# --- running ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    cost: dict[str, Decimal] = field(default_factory=dict)  # per workload
    answers: dict[str, list[str]] = field(default_factory=dict)  # per workload: the answers' texts, in order
    refused: dict[str, int] = field(default_factory=dict)


def send(client: httpx.Client, call: Call, *, key: str, governed: bool) -> tuple[int, dict[str, Any]]:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"} if call.api == "anthropic" else {}
    if call.api == "openai":
        headers["authorization"] = f"Bearer {key}"
    if governed:
        headers |= call.headers
    path = "/v1/messages" if call.api == "anthropic" else "/v1/chat/completions"
    response = client.post(path, json=call.body, headers=headers)
    return response.status_code, response.json()


def answer_text(api: str, body: dict[str, Any]) -> str:
    if api == "anthropic":
        return "".join(str(b.get("text", b.get("name", ""))) for b in body.get("content") or [])
    return str(((body.get("choices") or [{}])[0].get("message") or {}).get("content"))


def direct(upstream: str, calls: list[Call]) -> Run:
    catalogue, run = PriceCatalogue(), Run()
    now = datetime.now(UTC)
    with httpx.Client(base_url=upstream, timeout=120) as client:
        for call in calls:
            status, body = send(client, call, key="emulator-key", governed=False)
            assert status == 200, (status, body)
            fmt = "anthropic" if call.api == "anthropic" else "openai_chat"
            provider = "anthropic" if call.api == "anthropic" else "openai"
            cost = catalogue.sheet(provider=provider, model=call.body["model"], at=now).cost(usage_from_body(body, fmt))
            run.cost[call.workload] = run.cost.get(call.workload, Decimal(0)) + cost.total
            run.answers.setdefault(call.workload, []).append(answer_text(call.api, body))
    return run


def governed(upstream: str, calls: list[Call], workdir: Path) -> tuple[Run, list[CostEvent]]:
    (workdir / "policy.yaml").write_text(POLICY)
    os.environ.setdefault("FISCUS_BENCH_KEY", "emulator-key")
    providers = {
        "openai": ProviderConfig(
            kind="openai", base_url=f"{upstream}/v1", api_key_env="FISCUS_BENCH_KEY", models=["gpt-*"]
        ),
        "anthropic": ProviderConfig(
            kind="anthropic", base_url=f"{upstream}/v1", api_key_env="FISCUS_BENCH_KEY", models=["claude-*"]
        ),
    }
    config = FiscusConfig(
        ledger=f"sqlite:///{workdir / 'ledger.db'}",
        budget_store="memory://",
        keys=f"sqlite:///{workdir / 'keys.db'}",
        policy=workdir / "policy.yaml",
        providers=providers,
        optimise=OptimiseConfig(prompt_cache=True),
    )
    keyring = KeyRing(open_key_store(config.keys))
    claims = KeyClaims.of({"agent": ["*"]})
    keys = {
        name: keyring.create(agent=name, team="bench", environment="bench", workflow=name, claims=claims)[0]
        for name in WORKLOADS
    }
    run = Run()
    with ExitStack() as stack:
        stack.callback(keyring.store.close)
        gateway = stack.enter_context(run_gateway_in_thread(config, keyring=keyring))
        with httpx.Client(base_url=gateway, timeout=120) as client:
            for call in calls:
                status, body = send(client, call, key=keys[call.workload], governed=True)
                refused = status == 429 or (status == 200 and "fiscus" in answer_text(call.api, body)[:80].lower())
                if refused:
                    run.refused[call.workload] = run.refused.get(call.workload, 0) + 1
                    run.answers.setdefault(call.workload, []).append("(refused)")
                    continue
                assert status == 200, (status, body)
                run.answers.setdefault(call.workload, []).append(answer_text(call.api, body))
    with open_ledger(config.ledger) as ledger:
        events = list(ledger.events())
    for event in events:
        workload = event.attribution.workflow or ""
        run.cost[workload] = run.cost.get(workload, Decimal(0)) + event.cost.total
    return run, events


WORKLOADS = ("research", "compliance", "triage", "fleet", "a2a")


def workload_calls(scale: int) -> list[Call]:
    return [
        *research(tasks=2 * scale, steps=8),
        *compliance(calls=30 * scale),
        *triage(calls=60 * scale),
        *fleet(sessions=20 * scale),
        *a2a(rounds=12),
    ]


# --- report ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Levers:
    ungoverned: Decimal = Decimal(0)  # the ledger's ungoverned cost of the answered calls
    saved: Savings = field(default_factory=Savings)
    applied: dict[str, Decimal] = field(default_factory=dict)  # lever → ungoverned cost of the calls it touched


def levers(events: list[CostEvent], workloads: set[str]) -> Levers:
    """The ledger's savings by lever; what each touched is the ungoverned cost of the calls it changed, except
    for the cache: the cached tokens (read or written) at the plain input price, the seeds' measure."""
    catalogue, now = PriceCatalogue(), datetime.now(UTC)
    out = Levers()
    for event in events:
        if event.attribution.workflow not in workloads or event.saved is None or event.ungoverned_usd is None:
            continue
        out.ungoverned += event.ungoverned_usd
        out.saved.add(event.saved)
        for lever, value in event.saved.by_lever().items():
            if value and lever != "cache":
                out.applied[lever] = out.applied.get(lever, Decimal(0)) + event.ungoverned_usd
        u = event.usage
        cached = u.cache_read_tokens + u.cache_write_5m_tokens + u.cache_write_1h_tokens
        if cached:
            sheet = catalogue.sheet(provider=event.provider, model=event.served_model, at=now)
            plain = sheet.cost(Usage(input_tokens=cached)).total
            out.applied["cache"] = out.applied.get("cache", Decimal(0)) + plain
    return out


def apart(events: list[CostEvent], workloads: set[str]) -> dict[str, int]:
    """Calls counted by name beside the saving: degraded or refused work (never a saving) and cache hits."""
    counts = {"refused or partial": 0, "degraded by a budget": 0, "answered from the response cache": 0}
    for event in events:
        if event.attribution.workflow not in workloads:
            continue
        if event.status in (CallStatus.BLOCKED, CallStatus.PARTIAL):
            counts["refused or partial"] += 1
        elif event.tags.get("degraded") == "budget":
            counts["degraded by a budget"] += 1
        elif event.status is CallStatus.CACHE_HIT:
            counts["answered from the response cache"] += 1
    return counts


def pct(part: Decimal, whole: Decimal) -> str:
    return f"{float(part / whole) * 100:5.1f} %" if whole else "    –"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1, help="multiply every workload's task count")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    calls = workload_calls(args.scale)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        upstream = stack.enter_context(run_in_thread(EmulatorConfig(reply_tokens=120)))
        ungoverned = direct(upstream, calls)
        # A fresh emulator for the governed run: no prompt cache left over from the direct one.
        upstream = stack.enter_context(run_in_thread(EmulatorConfig(reply_tokens=120)))
        gov, events = governed(upstream, calls, Path(tmp))
    work = [w for w in WORKLOADS if w != "a2a"]
    print(f"{'workload':<12}{'calls':>7}{'ungoverned $':>15}{'governed $':>13}{'saved':>9}  equal answers")
    total_u = total_g = Decimal(0)
    equal = True
    for w in work:
        same = gov.answers.get(w) == ungoverned.answers.get(w) and not gov.refused.get(w)
        equal &= same
        u, g = ungoverned.cost.get(w, Decimal(0)), gov.cost.get(w, Decimal(0))
        total_u, total_g = total_u + u, total_g + g
        n = len(ungoverned.answers.get(w, []))
        print(f"{w:<12}{n:>7}{u:>15.4f}{g:>13.4f}{pct(u - g, u):>9}  {'yes' if same else 'NO'}")
    print(
        f"{'overall':<12}{'':>7}{total_u:>15.4f}{total_g:>13.4f}{pct(total_u - total_g, total_u):>9}  "
        f"{'yes' if equal else 'NO'}"
    )
    found = levers(events, set(work))
    print("\nsaving by lever (the ledger's account: ungoverned = no cache hit, requested model, nothing trimmed)")
    print(f"{'lever':<16}{'saved $':>11}{'of ungoverned':>15}{'of what it touched':>20}  (cache: on cached tokens)")
    for lever in LEVERS:
        value = getattr(found.saved, lever)
        if value:
            applied = found.applied.get(lever, Decimal(0))
            print(f"{lever:<16}{value:>11.4f}{pct(value, found.ungoverned):>15}{pct(value, applied):>20}")
    print(f"{'all levers':<16}{found.saved.total:>11.4f}{pct(found.saved.total, found.ungoverned):>15}")
    counted = apart(events, set(work))
    print("calls apart: " + ", ".join(f"{n} {what}" for what, n in counted.items()) + " (only hits are a saving)")
    a2a_u, a2a_g = ungoverned.cost.get("a2a", Decimal(0)), gov.cost.get("a2a", Decimal(0))
    refused = gov.refused.get("a2a", 0)
    print(
        f"\na2a loop (apart, not a saving): {len(ungoverned.answers.get('a2a', []))} calls ungoverned "
        f"${a2a_u:.4f}; governed ${a2a_g:.4f}, {refused} calls refused by the loop guard (work not done)"
    )
    overall = (total_u - total_g) / total_u if total_u else Decimal(0)
    verdict = "met" if overall >= Decimal("0.8") and equal else "NOT met"
    print(f"\noverall saving at equal work: {float(overall) * 100:.1f} % (goal >= 80 %: {verdict})")
    if args.json:
        figures = {
            "overall_saved": str(overall),
            "equal_answers": equal,
            "workloads": {
                w: {"ungoverned": str(ungoverned.cost.get(w)), "governed": str(gov.cost.get(w))} for w in WORKLOADS
            },
            "levers": found.saved.to_dict(),
            "apart": counted,
        }
        print(json.dumps(figures, indent=2))
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
