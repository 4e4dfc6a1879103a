"""The gateway ASGI app: OpenAI- and Anthropic-compatible endpoints on Starlette (hot path: raw ASGI handlers,
orjson, no pydantic), plus the FastAPI admin API at `/admin`, `/metrics` (behind a token, or on a listen address
of its own) and `/healthz`.

`create_app(config)` opens what it is not given (governor, key ring, upstream pool) and closes those at
shutdown; `run_gateway_in_thread(config)` serves it on a loopback port for tests and the demo.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from fiscus.alerts import AlertWatch
from fiscus.config import FiscusConfig
from fiscus.engine.decision import Action
from fiscus.errors import FiscusError, StoreError, StoreUnavailable
from fiscus.events.otel import join_callers_trace, release
from fiscus.gateway.answers import OUTAGE_RETRY_S
from fiscus.gateway.calls import Gateway
from fiscus.gateway.guards import GatewayGuards
from fiscus.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from fiscus.gateway.metrics_listener import start_metrics_listener
from fiscus.gateway.protocol import CHAT, MESSAGES, RESPONSES, BadRequest, Protocol, error_body
from fiscus.gateway.responses import JSON, RawResponse
from fiscus.gateway.tokens import bearer, configured, matches
from fiscus.governor.pace_watch import PaceWatch
from fiscus.governor.reload import POLICY_SCOPE, PolicyReloader
from fiscus.guards import BreakerConfig, BreakerRegistry, LoopConfig
from fiscus.reports.weekly.delivery import WeeklyDelivery
from fiscus.serving import serve_in_thread

log = logging.getLogger("fiscus.gateway")


class ProtocolEndpoint:
    """A raw ASGI endpoint for one protocol: every failure is answered in that protocol's error format."""

    def __init__(self, gateway: Gateway, protocol: Protocol, route: str) -> None:
        self.gateway = gateway
        self.protocol = protocol
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trace = join_callers_trace(scope["headers"])
        try:
            await self._answer(scope, receive, send)
        finally:
            if trace is not None:
                release(trace)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.gateway.handle(self.protocol, scope, receive)
        except BadRequest as exc:
            body = error_body(self.protocol, exc.status, exc.message, param=exc.param, code=exc.code)
            response = RawResponse(body, exc.status, exc.headers)
        except StoreUnavailable as exc:  # lost or unreachable, answered per store.on_store_loss (logged once there)
            self.gateway.metrics.error("store")
            body = error_body(self.protocol, 503, str(exc), code="store_unavailable")
            response = RawResponse(body, 503, {"retry-after": str(exc.retry_after)})
        except StoreError as exc:
            log.error("budget store failed: %s", exc)
            self.gateway.metrics.error("store")
            body = error_body(self.protocol, 503, f"budget store unavailable: {exc}", code="store_unavailable")
            response = RawResponse(body, 503, {"retry-after": str(OUTAGE_RETRY_S)})
        except FiscusError as exc:
            response = RawResponse(error_body(self.protocol, 400, str(exc)), 400)
        except Exception:
            log.exception("gateway error on %s", self.route)
            self.gateway.metrics.error("internal")
            response = RawResponse(error_body(self.protocol, 500, "internal gateway error"), 500)
        self.gateway.metrics.request(self.route, getattr(response, "status_code", 200) or 200)
        await response(scope, receive, send)


class GatewayApp(Starlette):
    """Starlette for everything, except that a POST to one of the proxied routes goes straight to its endpoint,
    past the middleware stack and the router (the endpoints answer every error themselves)."""

    def __init__(self, *, proxied: dict[str, ProtocolEndpoint], **options: Any) -> None:
        super().__init__(**options)
        self._proxied = proxied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._proxied.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    config: FiscusConfig,
    *,
    governor: Any | None = None,
    keyring: Any | None = None,
    upstreams: Any | None = None,
    breakers: BreakerConfig | BreakerRegistry | None = None,
    loops: LoopConfig | None = None,
    on_breaker_open: str | None = None,
    on_event: Callable[[object], None] | None = None,
    overrides: Any | None = None,
) -> Starlette:
    """The gateway app. `governor`, `keyring` (a `fiscus.keys.KeyRing`) and `upstreams` (a
    `fiscus.providers.Upstream`) default to ones opened from `config`; those opened here are closed at shutdown.
    `breakers` (a config for every breaker, or a registry to share) and `loops` set the guards (defaults: the
    config's `guards:` section, whose breakers share their state at `guards.state`, beside the budget store
    unless set); `on_breaker_open` (default `guards.breakers.on_open`) answers an open spend-rate breaker with
    `partial` or `block` (429); a model's open error-rate breaker is an outage, answered 503 either way. Guard
    events (`BreakerTripped`, `LoopDetected`) go to `on_event` and to the governor's own hook. `overrides` (a
    `fiscus.overrides.OverrideBook`) defaults to one on the key store's database."""
    from fiscus.governor import Governor
    from fiscus.keys import KeyRing, open_key_store
    from fiscus.ledger import open_ledger
    from fiscus.overrides import OverrideBook, open_override_store
    from fiscus.providers import Upstream

    owned: list[Any] = []
    if governor is None:
        governor = Governor.from_config(config)
        owned.append(governor)
    if keyring is None:
        keyring = KeyRing(open_key_store(config.keys))
    if overrides is None:
        overrides = OverrideBook(open_override_store(config.keys))
        owned.append(overrides.store)
    emit = _emitter(governor, on_event)
    registry = breakers
    if not isinstance(registry, BreakerRegistry):
        registry = config.guards.breaker_registry(budget_store=config.budget_store, config=breakers)
        owned.append(registry)
    loop_config = loops or config.guards.loop_config()
    loop_states = config.guards.loop_states(config.budget_store, loop_config)
    owned.append(loop_states)
    guards = GatewayGuards(
        registry,
        loop_config,
        on_breaker_open=Action(on_breaker_open or config.guards.breakers.on_open),
        emit=emit,
        loop_states=loop_states,
        overridable=config.guards.guard_overrides(),
    )
    alerts = (
        AlertWatch(governor, ledger_url=config.ledger, open_ledger=open_ledger, breakers=registry)
        if _keeps(governor)
        else None
    )
    weekly = (
        WeeklyDelivery(governor, config.review.weekly, ledger_url=config.ledger, open_ledger=open_ledger)
        if _keeps(governor) and config.review.weekly.enabled
        else None
    )
    metrics = GatewayMetrics(
        status=governor.status,
        breakers=guards.open_breakers,
        alerts=alerts.counts if alerts else None,
        top_n=config.gateway.metrics_top_n,
        store_events=getattr(getattr(governor, "guard", None), "announced", None),
    )
    own_upstream = upstreams is None
    if upstreams is None:

        def on_attempt(attempt: Any) -> None:
            if attempt.retry:
                metrics.retry(attempt.provider)

        upstreams = Upstream.from_config(config, on_attempt=on_attempt)
    gateway = Gateway(
        config,
        governor=governor,
        keys=keyring,
        upstream=upstreams,
        metrics=metrics,
        guards=guards,
        overrides=overrides,
    )
    if gateway.response_cache is not None:
        owned.append(gateway.response_cache.store)

    models_body = orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": provider}
                for model, provider in gateway.router.models()
            ],
        }
    )

    async def list_models(request: Request) -> Response:
        return Response(models_body, media_type=JSON)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    metrics_tokens = (config.gateway.metrics_token_env, config.gateway.admin_token_env)

    async def metrics_endpoint(request: Request) -> Response:
        if not matches(bearer(request.headers.get("authorization")), metrics_tokens):
            return _metrics_refused(metrics_tokens, config.gateway.metrics_listen)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    from fiscus.gateway.admin import create_admin_app

    reloader = None
    if _keeps(governor):  # a real governor: its policy can be reloaded; the version reaches every worker
        reloader = PolicyReloader(governor, config.policy, notify=config.notify, state=registry.state)
        registry.watchers.append(_policy_watcher(reloader))

    admin = create_admin_app(
        governor=governor,
        keyring=keyring,
        overrides=overrides,
        ledger_url=config.ledger,
        token_env=config.gateway.admin_token_env,
        open_ledger=open_ledger,
        breakers=registry,
        reloader=reloader,
        alerts=alerts,
        forecast_file=config.review.weekly.targets,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        listener = None
        if config.gateway.metrics_listen:
            listener = await start_metrics_listener(config.gateway.metrics_listen, metrics.render)
        watches = [
            _every(config.gateway.pace_check_s, PaceWatch(governor).check, "budget pace check")
            if _keeps(governor)
            else None,
            _every(config.gateway.alert_check_s, alerts.check, "alert check") if alerts else None,
            _every(config.review.weekly.check_s, weekly.check, "weekly report") if weekly else None,
            start_watch(door, config.gateway.batch_poll_s) if _keeps(governor) else None,
            # An idle worker still takes a reload another worker published, and its windows' deltas go out.
            _every(max(config.guards.state_refresh_s, 1.0), registry.sync, "breaker state sync"),
        ]
        hangup = _on_sighup(reloader) if reloader is not None else False
        try:
            yield
        finally:
            if hangup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            for watch in watches:
                if watch is not None:
                    watch.cancel()
            if listener is not None:
                listener.close()
            if own_upstream:
                await upstreams.aclose()
            for thing in owned:
                thing.close()

    from fiscus.batches.store import BatchStore
    from fiscus.gateway import batches_anthropic, batches_openai
    from fiscus.gateway.batches import BatchDoor
    from fiscus.gateway.batches_watch import start_watch

    batch_store = BatchStore(config.keys)  # beside the keys: each batch's submitter and reservations
    owned.append(batch_store)
    door = BatchDoor(gateway, batch_store)

    proxied = {
        "/v1/chat/completions": ProtocolEndpoint(gateway, CHAT, "chat"),
        "/v1/responses": ProtocolEndpoint(gateway, RESPONSES, "responses"),
        "/v1/messages": ProtocolEndpoint(gateway, MESSAGES, "messages"),
    }
    routes = [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in proxied.items()),
        *batches_openai.routes(door),
        *batches_anthropic.routes(door),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/admin", app=admin),
    ]
    handlers = {404: _route_error, 405: _route_error}
    app = GatewayApp(proxied=proxied, routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.gateway = gateway
    return app


def _policy_watcher(reloader: PolicyReloader) -> Callable[[Any], None]:
    def watch(record: Any) -> None:
        if record.scope == POLICY_SCOPE:
            reloader.on_record(record)

    return watch


def _on_sighup(reloader: PolicyReloader) -> bool:
    """SIGHUP reloads the policy (validated first; off the event loop). Only a process's main thread can take
    signals: a gateway served from a thread (tests, the demo) has the admin route instead."""
    loop = asyncio.get_running_loop()

    running: set[asyncio.Task[Any]] = set()  # referenced until done, so a reload is not collected midway

    def hup() -> None:
        task = loop.create_task(asyncio.to_thread(reloader.reload, why="SIGHUP"))
        running.add(task)
        task.add_done_callback(running.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, hup)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        return False
    return True


def _keeps(governor: Any) -> bool:
    """A real governor: it keeps budgets (and a store to claim announcements on); a stand-in does not."""
    return hasattr(governor, "announcer")


async def _route_error(request: Request, exc: Exception) -> Response:
    """An unknown URL or a wrong method, answered as the provider would (Anthropic's format under /v1/messages)."""
    status = getattr(exc, "status_code", 404)
    path, method = request.url.path, request.method
    protocol = MESSAGES if path.startswith("/v1/messages") else CHAT
    if status == 405:
        message, code = f"Method {method} is not allowed on {path}", "method_not_allowed"
    else:
        message, code = f"Invalid URL ({method} {path})", "not_found"
    body = error_body(protocol, status, message, code=code)
    return Response(body, status, headers=getattr(exc, "headers", None), media_type=JSON)


def _metrics_refused(tokens: tuple[str, ...], listen: str | None) -> Response:
    if configured(tokens):
        message = "invalid or missing metrics token"
    else:
        message = f"/metrics needs a token: set {' or '.join(tokens)}"
    if listen:
        message += f" (or scrape {listen}/metrics)"
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
    return Response(body, 401, headers={"www-authenticate": "Bearer"}, media_type=JSON)


def _every(seconds: float, check: Callable[[], object], what: str) -> asyncio.Task[None] | None:
    """Every `seconds` (0: never), run `check` on a worker thread: budget pace (`PaceWatch`) and the alert table
    (`AlertWatch`) read the store and the ledger. Each worker runs its own; the store claim makes each
    announcement happen once."""
    if not seconds:
        return None

    async def run() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(check)
            except Exception:  # a store or ledger hiccup must not end the watch
                log.exception("%s failed", what)

    return asyncio.get_running_loop().create_task(run(), name=f"fiscus-{what.replace(' ', '-')}")


def _emitter(governor: Any, on_event: Callable[[object], None] | None) -> Callable[[object], None]:
    # The governor's hook too, so notifiers see guard events beside budget events.
    hook = getattr(governor, "on_event", None)
    targets = [t for t in (on_event, hook) if callable(t)]

    def emit(event: object) -> None:
        for target in targets:
            target(event)

    return emit


@contextmanager
def run_gateway_in_thread(
    config: FiscusConfig,
    *,
    governor: Any | None = None,
    keyring: Any | None = None,
    host: str = "127.0.0.1",
    **options: Any,
) -> Iterator[str]:
    """Serve `create_app(config, governor=…, keyring=…, **options)` with uvicorn on a free port of `host`;
    yield the base URL (no `/v1`)."""
    app = create_app(config, governor=governor, keyring=keyring, **options)
    with serve_in_thread(app, name="gateway", host=host) as url:
        yield url
