"""An in-process stand-in for the OpenAI, Anthropic and Gemini APIs, speaking their real wire formats.

`create_app(config)` builds the ASGI app; `run_in_thread(config)` serves it on a loopback port. The
endpoints and the `x-emulator-*` steering headers are listed in `fiscus.emulator.app`.
"""

from fiscus.emulator.app import create_app
from fiscus.emulator.config import EmulatorConfig
from fiscus.emulator.server import run_in_thread

__all__ = ["EmulatorConfig", "create_app", "run_in_thread"]
