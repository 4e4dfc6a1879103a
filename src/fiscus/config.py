"""`fiscus.yaml`: where the ledger and budget store live, the policy file, price overrides, providers.

Every section is validated; an error names the file, the field and what is wrong. Paths in the file are
relative to the file. Environment variables are referenced by name (`api_key_env`), never inlined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fiscus.errors import ConfigError
from fiscus.guards.settings import GuardsConfig
from fiscus.notify.channels import NotifyConfig
from fiscus.pricing.overrides import PricingConfig

DEFAULT_HOME = Path(".fiscus")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderConfig(_Section):
    """An upstream provider. `kind` picks the wire format and auth; `base_url` may point anywhere compatible."""

    kind: str = Field(
        description="openai | anthropic | gemini | openai-compatible | azure-openai | bedrock | vertex | deepseek | "
        "groq | together | mistral | xai | openrouter"
    )
    base_url: str | None = None
    api_key_env: str | None = None
    api_version: str | None = None  # Azure OpenAI api-version; Anthropic anthropic-version
    models: list[str] = Field(default_factory=list)  # model names served here (globs allowed)
    rpm: int | None = None  # the provider's own limits; fiscus keeps under them
    tpm: int | None = None
    timeout_connect_s: float = 5.0
    timeout_read_s: float = 600.0
    max_retries: int = 2
    fallbacks: list[str] = Field(default_factory=list)  # "provider/model" to try when this one fails
    organization: str | None = None  # OpenAI-Organization header (OpenAI only)
    project: str | None = None  # OpenAI-Project header (OpenAI); the Google Cloud project (Vertex)
    region: str | None = None  # AWS region (Bedrock, default us-east-1); Vertex location (default global)
    headers: dict[str, str] = Field(default_factory=dict)  # extra headers sent upstream, e.g. OpenRouter's X-Title
    deployments: dict[str, str] = Field(default_factory=dict)  # Azure OpenAI: model name -> deployment name
    # PEM file of the CAs that verify this provider's certificate, instead of the system's (a private CA, a
    # TLS-inspecting proxy); relative to fiscus.yaml
    ca_bundle: Path | None = None


class GatewayConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8787
    workers: int = 1
    max_body_bytes: int = 8 * 1024 * 1024
    # A request body must arrive whole within this time; at most `max_slow_bodies` requests per worker may
    # still be sending theirs after the first second (a client trickling a body holds a connection meanwhile).
    body_timeout_s: float = Field(default=10.0, gt=0)
    max_slow_bodies: int = Field(default=32, ge=1)
    # With several workers the supervisor replaces a worker that does not answer its health check within this
    # time. uvicorn's 5 s is shorter than a worker's start on a loaded host: it killed workers still importing
    # (the gateway never came up) and busy ones mid-request (their clients' connections reset).
    worker_healthcheck_s: int = Field(default=60, ge=1)
    # An idle client connection is kept this long. Longer than clients keep theirs (httpx and the OpenAI and
    # Anthropic SDKs: 5 s, uvicorn's default too): at equal times a client could send its next request on a
    # connection the gateway was closing that instant, and lose it to a reset.
    keep_alive_s: int = Field(default=75, ge=1)
    admin_token_env: str = "FISCUS_ADMIN_TOKEN"
    # /metrics needs `Authorization: Bearer` with this env var's token (or the admin token); unset: closed.
    metrics_token_env: str = "FISCUS_METRICS_TOKEN"
    # host:port where /metrics is also served without a token (bind it to a private interface)
    metrics_listen: str | None = None
    retry_budget_ratio: float = 0.1  # retries may be at most this share of requests
    rate_limit_headroom: float = 0.15  # stay this far under a provider's RPM/TPM
    pace_check_s: float = Field(default=300.0, ge=0)  # how often budgets' pace is checked (0: never)
    alert_check_s: float = Field(default=60.0, ge=0)  # how often the alert table is checked (0: never)
    # how often the gateway polls the batches it admitted and settles those that ended unpolled (0: never)
    batch_poll_s: float = Field(default=60.0, ge=0)
    metrics_top_n: int = Field(default=20, ge=1, le=1000)  # /metrics: agents and teams named; the rest "other"


class WeeklyReviewConfig(_Section):
    """`review.weekly`: the weekly report, built for the last complete ISO week (UTC) once `weekday` `hour_utc`
    has come, delivered once per week across workers (claimed in the budget store) to `channel` (else the
    default notify channels), with its Markdown, HTML, CSV and JSON written to `out_dir`."""

    enabled: bool = True
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"
    hour_utc: int = Field(default=8, ge=0, le=23)
    channel: str | None = None
    out_dir: Path = DEFAULT_HOME / "reports"
    targets: Path | None = None  # `fiscus forecast --json` / `fiscus model --json` output; the policy's win
    check_s: float = Field(default=300.0, ge=0)  # how often the gateway looks whether it is due (0: never)


class ReviewConfig(_Section):
    weekly: WeeklyReviewConfig = Field(default_factory=WeeklyReviewConfig)


class OptimiseConfig(_Section):
    # Put cache breakpoints on Anthropic requests whose prefix or conversation repeats (fiscus.shaping.cache).
    prompt_cache: bool = False


class StoreConfig(_Section):
    """How the budget store is reached. Redis: each process's connection pool (sync and async client each) holds at
    most `pool_size` connections, and a call finding them busy waits up to `pool_wait_s` for one rather than
    failing; a connect or reply taking longer than `timeout_s` fails the call. `on_store_loss`: what admission does
    when the store lost its state (an emptied Redis, a replaced SQLite file, a restarted memory store) — `rebuild`
    the current windows' counters from the ledger first, refusing calls meanwhile; `fail_closed` refuse until an
    operator runs `fiscus budgets rebuild`; `fail_open` admit on budgets counted from zero. While the store cannot
    be reached, `fail_open` admits and the others refuse."""

    pool_size: int = Field(default=64, ge=1, le=10_000)
    pool_wait_s: float = Field(default=5.0, gt=0, le=300)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    on_store_loss: Literal["rebuild", "fail_closed", "fail_open"] = "rebuild"

    def options(self, url: str) -> dict[str, Any]:
        """The `open_store` options for the store at `url`."""
        if url.lower().startswith(("redis://", "rediss://")):
            return {"pool_size": self.pool_size, "pool_wait_s": self.pool_wait_s, "timeout_s": self.timeout_s}
        return {}


class FiscusConfig(_Section):
    ledger: str = Field(default=f"sqlite:///{DEFAULT_HOME}/ledger.db", description="sqlite:///path or postgresql://…")
    budget_store: str = Field(default="memory://", description="memory://, sqlite:///path or redis://host:port/db")
    store: StoreConfig = Field(default_factory=StoreConfig)  # how the budget store is reached (Redis pool)
    policy: Path | None = None
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    keys: str = Field(default=f"sqlite:///{DEFAULT_HOME}/keys.db", description="where virtual keys are kept")
    guards: GuardsConfig = Field(default_factory=GuardsConfig)  # breakers, loops, post-mortems, shared state
    optimise: OptimiseConfig = Field(default_factory=OptimiseConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    source: Path | None = Field(default=None, exclude=True)


def load_config(path: str | Path | None) -> FiscusConfig:
    """Load and validate a config file; `None` gives the embedded defaults."""
    if path is None:
        return FiscusConfig()
    path = Path(path)
    data = read_yaml(path)
    try:
        config = FiscusConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None
    if config.policy is not None and not config.policy.is_absolute():
        config.policy = path.parent / config.policy
    for provider in config.providers.values():
        if provider.ca_bundle is not None and not provider.ca_bundle.is_absolute():
            provider.ca_bundle = path.parent / provider.ca_bundle
    postmortems = config.guards.postmortem_dir
    if postmortems is not None and not postmortems.is_absolute() and "postmortem_dir" in config.guards.model_fields_set:
        config.guards.postmortem_dir = path.parent / postmortems
    weekly = config.review.weekly
    if "out_dir" in weekly.model_fields_set and not weekly.out_dir.is_absolute():
        weekly.out_dir = path.parent / weekly.out_dir
    if weekly.targets is not None and not weekly.targets.is_absolute():
        weekly.targets = path.parent / weekly.targets
    config.source = path
    return config


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def describe_validation_error(path: Path, exc: ValidationError) -> str:
    """One line naming the file, the field and the fault (the first fault, and how many more)."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {field}: {first['msg']}{more}"
