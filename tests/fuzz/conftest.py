"""The fuzz suite's target: the real gateway (real governor on a SQLite budget store and ledger, the emulator as
its provider) and a watch on every log record it writes. `FISCUS_FUZZ_EXAMPLES` sets the examples per property
(bench/fuzz_long.py runs thousands)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, settings

from fiscus.emulator import EmulatorConfig, run_in_thread
from tests.gateway.conftest import Real, real_gateway

EXAMPLES = int(os.environ.get("FISCUS_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # the same examples on every machine: CI and the long run do not depend on a local cache
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
ADMIN_TOKEN = "fuzz-admin-token"
METRICS_TOKEN = "fuzz-metrics-token"
POLICY = """
version: 1
budgets:
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 500}}
  - {name: per-user, scope: {user: "*"}, window: day, limit: {usd: 0.5}}
"""


class LogWatch(logging.Handler):
    """Every record at ERROR or above, and every record that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in record.getMessage():
            self.bad.append(record)

    def lines(self) -> list[str]:
        return [f"{r.name} {r.levelname}: {r.getMessage()}" for r in self.bad]


@pytest.fixture(scope="module")
def fuzz_emulator() -> Iterator[str]:
    with run_in_thread(EmulatorConfig()) as url:
        yield url


@pytest.fixture(scope="module")
def watch() -> Iterator[LogWatch]:
    handler = LogWatch()
    # uvicorn's loggers do not propagate to the root: watch them where they are.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, fuzz_emulator: str, watch: LogWatch
) -> Iterator[tuple[Real, tuple[str, int]]]:
    """The gateway and its (host, port); the admin and metrics tokens are set for the whole module."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    saved = {name: os.environ.get(name) for name in ("FISCUS_ADMIN_TOKEN", "FISCUS_METRICS_TOKEN")}
    os.environ["FISCUS_ADMIN_TOKEN"], os.environ["FISCUS_METRICS_TOKEN"] = ADMIN_TOKEN, METRICS_TOKEN
    try:
        with real_gateway(tmp, fuzz_emulator, POLICY, f"sqlite:///{tmp}/budget.db") as real:
            url = urlparse(real.url)
            yield real, (url.hostname or "127.0.0.1", url.port or 80)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def held(real: Real) -> list[str]:
    """The budgets still holding a reservation (once every answer sent has been settled: the settle of a whole
    answer follows it on the same task)."""
    deadline = time.monotonic() + 10
    while True:
        left = [
            f"{s.budget}{dict(s.values)}: {s.reserved}"
            for s in real.governor.status()
            if s.reserved.nanos or s.reserved.requests or s.reserved.tokens
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
