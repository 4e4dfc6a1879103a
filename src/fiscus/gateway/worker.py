"""The app factory uvicorn loads in each worker process: `fiscus.gateway.worker:app_from_env`.

The config path travels in `FISCUS_CONFIG` (set by `fiscus serve`), so every worker opens the same budget
store and ledger; with several workers the store must be shared (SQLite file or Redis, not memory://).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

CONFIG_ENV = "FISCUS_CONFIG"


def app_from_env() -> Starlette:
    from fiscus.config import load_config
    from fiscus.gateway.app import create_app

    return create_app(load_config(os.environ.get(CONFIG_ENV) or None))
