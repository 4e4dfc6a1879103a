"""One emulator per test session on a real loopback port, reset before each test; official SDKs as clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.emulator.config import ManualClock


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    """The session emulator's clock; tests advance it to expire caches and refill rate limits."""
    return ManualClock()


@pytest.fixture(scope="session")
def emulator_url(clock: ManualClock) -> Iterator[str]:
    with run_in_thread(EmulatorConfig(clock=clock)) as url:
        yield url


@pytest.fixture(scope="session")
def control(emulator_url: str) -> Iterator[httpx.Client]:
    """A plain client for the emulator's own endpoints."""
    with httpx.Client(base_url=emulator_url) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_emulator(control: httpx.Client) -> None:
    control.post("/_emulator/reset").raise_for_status()


@pytest.fixture
def stats(control: httpx.Client) -> Any:
    def read() -> dict[str, Any]:
        return control.get("/_emulator/stats").json()

    return read


@pytest.fixture(scope="session")
def oai(emulator_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
async def aoai(emulator_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture(scope="session")
def claude(emulator_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0) as client:
        yield client


@pytest.fixture
async def aclaude(emulator_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0) as client:
        yield client


@pytest.fixture(scope="session")
def gemini(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{emulator_url}/v1beta", headers={"x-goog-api-key": "g-test"}) as client:
        yield client
