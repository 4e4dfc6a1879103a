"""`fiscus serve`: run the gateway with uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: Path | None = typer.Option(None, "--config", "-c", help="fiscus.yaml (default: built-in defaults)"),
        host: str | None = typer.Option(None, help="Interface to bind (default: gateway.host from the config)"),
        port: int | None = typer.Option(None, help="Port (default: gateway.port from the config)"),
        workers: int | None = typer.Option(None, help="Worker processes sharing the budget store and ledger"),
    ) -> None:
        """Serve the OpenAI- and Anthropic-compatible gateway: /v1/chat/completions, /v1/responses,
        /v1/messages, /v1/models, /healthz, /metrics and the admin API under /admin.

        Every worker reads the same config, so all share the budget store and the circuit breakers' state
        (guards.state, beside the budget store by default): a breaker opened in one is open in all. SIGHUP
        reloads the policy file (validated first; a broken file keeps the running policy) in every worker."""
        import uvicorn

        from fiscus.config import load_config
        from fiscus.errors import ConfigError
        from fiscus.gateway.worker import CONFIG_ENV

        loaded = load_config(config)  # fail here, once, with a readable message, not in every worker
        if loaded.policy is not None:
            from fiscus.notify.channels import check_channels
            from fiscus.policy import load_policy

            check_channels(load_policy(loaded.policy), loaded.notify, config=config)
        workers = workers or loaded.gateway.workers
        if workers > 1 and loaded.budget_store.startswith("memory://"):
            raise ConfigError("several workers need a shared budget store: set budget_store to sqlite:/// or redis://")
        if workers > 1 and loaded.guards.state_url(loaded.budget_store).startswith("memory://"):
            raise ConfigError("several workers need shared breaker state: set guards.state to sqlite:/// or redis://")
        if config is not None:
            os.environ[CONFIG_ENV] = str(config.resolve())
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        if http == "h11":
            print("fiscus: httptools is not installed; using the slower h11 parser", file=sys.stderr)
        if workers > 1:
            _forward_sighup()
        host, port = host or loaded.gateway.host, port or loaded.gateway.port
        base = f"http://{host}:{port}"
        print(
            f"fiscus gateway on {base} ({workers} worker{'s' if workers > 1 else ''}): OpenAI SDKs at {base}/v1, "
            f"Anthropic SDKs at {base}; dashboard {base}/admin/dashboard",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(
            "fiscus.gateway.worker:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_worker_healthcheck=loaded.gateway.worker_healthcheck_s,
            timeout_keep_alive=loaded.gateway.keep_alive_s,
            loop=loop,
            http=http,
            access_log=False,
            log_level="warning",
        )


def _forward_sighup() -> None:
    """uvicorn's supervisor answers SIGHUP by restarting its workers, and a worker restarted on a broken policy
    file would fail to start: pass the signal to each worker instead, which reloads its policy (validated first)."""
    import signal

    from uvicorn.supervisors.multiprocess import Multiprocess

    def handle_hup(self: Multiprocess) -> None:
        for process in self.processes:
            pid = process.process.pid
            if pid is not None:
                os.kill(pid, signal.SIGHUP)

    Multiprocess.handle_hup = handle_hup  # type: ignore[method-assign]
