"""The batch lever on a non-urgent workload, at equal work: the same requests sent synchronously straight to the
emulated providers (ungoverned: each answer priced at the catalogue's synchronous price) and as batches through
the gateway (governed: what the ledger recorded, each result priced at the batch price), in one run.

    .venv/bin/python bench/batch_savings.py [--requests 200] [--json]

Workload: a nightly evaluation of `requests` support tickets on gpt-4o-mini (OpenAI Batch) and as many document
summaries on Claude Haiku 4.5 (Anthropic Message Batches), a 1.5k-token prompt and a 200-token answer each. Equal
work: every batched request must succeed with the same output tokens as its synchronous twin. Prints the cost of
each run, the saving overall and the `batch` lever the ledger attributes, the ratio governed / ungoverned, and
how long the gateway took to admit and settle a batch against the direct run's time per request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson

from fiscus.config import FiscusConfig, ProviderConfig
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.gateway.app import run_gateway_in_thread
from fiscus.governor import Governor
from fiscus.keys import KeyRing, open_key_store
from fiscus.ledger import open_ledger
from fiscus.pricing import PriceCatalogue
from fiscus.usage.detect import usage_from_body

POLICY = """
version: 1
deferrable: [nightly-eval]
budgets:
  - {name: month, scope: {team: evals}, window: month, limit: {usd: 1000}}
"""
KEY_ENV = "FISCUS_BENCH_UPSTREAM_KEY"


def prompt(i: int) -> str:
    return f"Ticket {i}: " + " ".join(f"word{(i * 7 + j) % 997}" for j in range(1500))


def chat(i: int) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "max_tokens": 300, "messages": [{"role": "user", "content": prompt(i)}]}


def message(i: int) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 300, "messages": [{"role": "user", "content": prompt(i)}]}


def ungoverned(emulator: str, n: int, catalogue: PriceCatalogue) -> tuple[Decimal, list[int], float]:
    """Each request sent on its own, straight to the provider; (cost at synchronous prices, output tokens, s)."""
    direct_oai = openai.OpenAI(base_url=f"{emulator}/v1", api_key="sk-direct", max_retries=0)
    direct_claude = anthropic.Anthropic(base_url=emulator, api_key="sk-direct", max_retries=0)
    cost, outputs, started = Decimal(0), [], time.perf_counter()
    for i in range(n):
        body = direct_oai.chat.completions.with_raw_response.create(**chat(i)).http_response.json()
        usage = usage_from_body(body, "openai_chat")
        cost += catalogue.price(usage, provider="openai", model="gpt-4o-mini").total
        outputs.append(usage.output_tokens)
    for i in range(n):
        body = direct_claude.messages.with_raw_response.create(**message(i)).http_response.json()
        usage = usage_from_body(body, "anthropic")
        cost += catalogue.price(usage, provider="anthropic", model="claude-haiku-4-5").total
        outputs.append(usage.output_tokens)
    return cost, outputs, time.perf_counter() - started


def governed(url: str, emulator: str, key: str, n: int) -> tuple[float, float]:
    """Both batches through the gateway; (seconds to upload and admit them, seconds for the poll that settles them
    once they have ended and run at the provider)."""
    headers = {"x-fiscus-task-class": "nightly-eval", "x-emulator-batch-delay-ms": "200"}
    oai = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, default_headers=headers)
    claude = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, default_headers=headers)
    lines = [{"custom_id": f"t{i}", "method": "POST", "url": "/v1/chat/completions", "body": chat(i)} for i in range(n)]
    started = time.perf_counter()
    uploaded = oai.files.create(file=("eval.jsonl", b"\n".join(orjson.dumps(x) for x in lines)), purpose="batch")
    batch = oai.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    summaries = claude.messages.batches.create(
        requests=[{"custom_id": f"d{i}", "params": message(i)} for i in range(n)]  # type: ignore[misc]
    )
    admitted = time.perf_counter() - started
    time.sleep(0.3)  # both ended at the provider; read them there once, so the timing below is the gateway's own
    direct = {"authorization": "Bearer sk-direct", "x-api-key": "sk-direct", "anthropic-version": "2023-06-01"}
    httpx.get(f"{emulator}/v1/batches/{batch.id}", headers=direct).raise_for_status()
    httpx.get(f"{emulator}/v1/messages/batches/{summaries.id}", headers=direct).raise_for_status()
    started = time.perf_counter()
    while oai.batches.retrieve(batch.id).status != "completed":
        time.sleep(0.05)
    while claude.messages.batches.retrieve(summaries.id).processing_status != "ended":
        time.sleep(0.05)
    return admitted, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per provider")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.requests
    os.environ.setdefault(KEY_ENV, "sk-emulator")
    with tempfile.TemporaryDirectory() as tmp, run_in_thread(EmulatorConfig()) as emulator:
        (Path(tmp) / "policy.yaml").write_text(POLICY, encoding="utf-8")
        providers = {
            name: ProviderConfig(
                kind=name, base_url=f"{emulator}/v1", api_key_env=KEY_ENV, models=[models], max_retries=0
            )
            for name, models in (("openai", "gpt-*"), ("anthropic", "claude-*"))
        }
        config = FiscusConfig(
            ledger=f"sqlite:///{tmp}/ledger.db",
            budget_store=f"sqlite:///{tmp}/budget.db",
            keys=f"sqlite:///{tmp}/keys.db",
            policy=Path(tmp) / "policy.yaml",
            providers=providers,
        )
        catalogue = PriceCatalogue(config.pricing)
        direct_cost, direct_outputs, direct_s = ungoverned(emulator, n, catalogue)
        # Both runs start with the prompt caches cold: the batched run must not read what the direct one wrote.
        httpx.post(f"{emulator}/_emulator/reset").raise_for_status()
        governor = Governor.from_config(config)
        keyring = KeyRing(open_key_store(config.keys))
        secret, _ = keyring.create(agent="evaluator", team="evals", environment="bench")
        with run_gateway_in_thread(config, governor=governor, keyring=keyring) as url:
            admit_s, settle_s = governed(url, emulator, secret, n)
            assert governor.ledger is not None and governor.ledger.flush(timeout=30)  # type: ignore[attr-defined]
        governor.close()
        with open_ledger(config.ledger) as ledger:
            events = list(ledger.events())
    answered = sorted(e.usage.output_tokens for e in events if e.status.value == "ok")
    equal_work = len(events) == 2 * n and answered == sorted(direct_outputs)
    batch_cost = sum((e.cost.total for e in events), Decimal(0))
    lever = sum((e.saved.batch for e in events if e.saved is not None), Decimal(0))
    figures = {
        "requests": 2 * n,
        "equal_work": equal_work,
        "ungoverned_usd": str(direct_cost),
        "governed_usd": str(batch_cost),
        "saved_pct": str(round((1 - batch_cost / direct_cost) * 100, 2)) if direct_cost else "0",
        "batch_lever_usd": str(lever),
        "cost_ratio": str(round(batch_cost / direct_cost, 4)) if direct_cost else "0",
        "admit_ms_per_request": round(admit_s * 1000 / (2 * n), 3),
        "settle_ms_per_request": round(settle_s * 1000 / (2 * n), 3),
        "direct_ms_per_request": round(direct_s * 1000 / (2 * n), 3),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"non-urgent workload: {2 * n} requests"
            " (gpt-4o-mini via OpenAI Batch, claude-haiku-4-5 via Message Batches)"
        )
        print(f"  equal work (every request answered, same output tokens): {equal_work}")
        print(f"  ungoverned, synchronous:  ${direct_cost:.6f}")
        print(f"  governed, batched:        ${batch_cost:.6f}  (ratio {figures['cost_ratio']})")
        print(f"  saved: {figures['saved_pct']} %, of which the batch lever ${lever:.6f}")
        print(
            f"  gateway: admit {figures['admit_ms_per_request']} ms and settle {figures['settle_ms_per_request']} ms"
            f" per request, vs {figures['direct_ms_per_request']} ms per direct synchronous request"
        )
    return 0 if equal_work else 1


if __name__ == "__main__":
    sys.exit(main())
