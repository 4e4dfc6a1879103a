"""Calibration kept beyond one process (`governor.calibration_keeper`): a governor from a config on SQLite or Redis
writes what settled calls taught its estimates into the store's backend and the next one reads it back, so its
first reserve is as tight as the last one's; another process's shapes are merged in without overwriting what
this one learned; a memory store keeps nothing; a damaged record is read as nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.config import load_config
from fiscus.engine.calibration import SCALE_ONE, Calibration
from fiscus.governor import CallRequest, Governor
from fiscus.governor.calibration_keeper import KEY, NAMESPACE, CalibrationKeeper
from fiscus.stores.response_cache import open_response_cache
from fiscus.usage import Usage

CALL = CallRequest("local", "house-model", Attribution(agent="scribe"), input_tokens=10_000, max_tokens=100,
                   cache_writes=False)  # fmt: skip
BILLED = Usage(input_tokens=5_000, output_tokens=100)  # the provider bills half of what was counted


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budgets.db"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


def config(folder: Path, store_url: str) -> Path:
    path = folder / "fiscus.yaml"
    path.write_text(
        f"ledger: sqlite:///{folder}/ledger.db\nbudget_store: {store_url}\npricing:\n  models:\n"
        "    - {provider: local, model: house-model, input_mtok: 10, output_mtok: 50}\n",
        encoding="utf-8",
    )
    return path


def first_reserve(governor: Governor) -> int:
    admission = governor.admit(CALL)
    governor.settle(admission, BILLED)
    assert admission.decision.reserve is not None
    return admission.decision.reserve.nanos


def test_the_next_process_reserves_as_tightly_as_the_last(tmp_path: Path, store_url: str) -> None:
    path = config(tmp_path, store_url)
    first = Governor.from_config(load_config(path))
    cold = first_reserve(first)
    for _ in range(5):
        first_reserve(first)
    learned = first.engine.calibration.ratio("local", "house-model", "scribe")
    assert learned < SCALE_ONE * 6 // 10  # about half: billed 5,000 for 10,000 counted
    first.close()

    second = Governor.from_config(load_config(path))
    assert second.engine.calibration.ratio("local", "house-model", "scribe") == learned
    warm = first_reserve(second)
    assert warm < cold * 7 // 10, (warm, cold)
    second.close()


def test_shapes_of_other_processes_are_merged_not_overwritten(tmp_path: Path, store_url: str) -> None:
    cache = open_response_cache(store_url)
    mine, theirs = Calibration(), Calibration()
    mine.observe("openai", "gpt-4o", "a", 1_000, 800)
    theirs.observe("openai", "gpt-4o", "a", 1_000, 3_000)
    theirs.observe("anthropic", "claude-haiku-4-5", "b", 1_000, 1_200)
    CalibrationKeeper(cache, theirs).save()
    keeper = CalibrationKeeper(cache, mine)
    keeper.save()
    stored = Calibration()
    assert CalibrationKeeper(cache, stored).load() == 4  # both agents' rows and both model-wide rows
    assert stored.ratio("openai", "gpt-4o", "a") == mine.ratio("openai", "gpt-4o", "a")  # this process's stands
    assert stored.ratio("anthropic", "claude-haiku-4-5", "b") == theirs.ratio("anthropic", "claude-haiku-4-5", "b")
    cache.close()


def test_a_memory_store_keeps_nothing_and_a_damaged_record_reads_as_nothing(tmp_path: Path) -> None:
    assert CalibrationKeeper.beside("memory://", Calibration()) is None
    url = f"sqlite:///{tmp_path}/budgets.db"
    cache = open_response_cache(url)
    cache.put(NAMESPACE, KEY, b"{not json", ttl_s=60, max_entries=1)
    assert CalibrationKeeper(cache, Calibration()).load() == 0
    cache.put(NAMESPACE, KEY, b'{"ratios": [["p", "m", null, -5, 1], ["p"], 7], "costs": "x"}', ttl_s=60, max_entries=1)
    fresh = Calibration()
    assert CalibrationKeeper(cache, fresh).load() == 0 and fresh.ratios == {}
    cache.close()


def test_snapshot_round_trip() -> None:
    learned = Calibration()
    learned.observe("openai", "gpt-4o", "a", 1_000, 1_500)
    learned.observe_cost("openai", "gpt-4o", "a", 10_000, 4_000)
    again = Calibration()
    assert again.adopt(learned.snapshot()) == 3
    assert again.ratios == learned.ratios and again.costs == learned.costs and again.rows() == learned.rows()


def test_the_periodic_write_is_off_the_settle_path(tmp_path: Path) -> None:
    cache = open_response_cache(f"sqlite:///{tmp_path}/budgets.db")
    learned = Calibration()
    keeper = CalibrationKeeper(cache, learned, every=2)
    learned.observe("openai", "gpt-4o", "a", 1_000, 700)
    keeper.observed()
    assert keeper._writer is None  # not yet: one of two
    keeper.observed()
    assert keeper._writer is not None and keeper._writer.name == "fiscus-calibration"
    keeper._writer.join(timeout=5)
    read = Calibration()
    assert CalibrationKeeper(cache, read).load() == 2 and read.ratios == learned.ratios
    keeper.close()
