"""Notification channels named in the policy (`notify` thresholds) and configured in `fiscus.yaml`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fiscus.errors import ConfigError

if TYPE_CHECKING:
    from fiscus.policy.types import Policy


class ChannelConfig(BaseModel):
    """Where one named channel delivers. Secrets (webhook URLs, routing keys) come from the environment."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["slack", "pagerduty", "webhook", "log"]
    url: str | None = None
    url_env: str | None = None
    routing_key_env: str | None = None  # PagerDuty Events API v2 integration key
    severity: Literal["critical", "error", "warning", "info"] = "warning"
    timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _has_target(self) -> ChannelConfig:
        if self.kind in ("slack", "webhook") and not (self.url or self.url_env):
            raise ValueError(f"a {self.kind} channel needs url or url_env")
        if self.kind == "pagerduty" and not self.routing_key_env:
            raise ValueError("a pagerduty channel needs routing_key_env")
        return self

    def target_url(self) -> str:
        if self.kind == "pagerduty":
            return self.url or "https://events.pagerduty.com/v2/enqueue"
        if self.url:
            return self.url
        value = os.environ.get(self.url_env or "")
        if not value:
            raise ConfigError(f"notify channel: environment variable {self.url_env} is not set")
        return value

    def routing_key(self) -> str:
        value = os.environ.get(self.routing_key_env or "")
        if not value:
            raise ConfigError(f"notify channel: environment variable {self.routing_key_env} is not set")
        return value


class NotifyConfig(BaseModel):
    """`notify:` in fiscus.yaml. Events that name no channel (warn, exhausted, loops, breakers) go to `default`."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    default: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _defaults_exist(self) -> NotifyConfig:
        missing = [name for name in self.default if name not in self.channels]
        if missing:
            raise ValueError(f"default names unknown channel(s): {', '.join(missing)}")
        return self


def check_channels(policy: Policy, notify: NotifyConfig, *, config: object = None) -> None:
    """Every channel the policy names (its notify thresholds, its alerts' level channels) must be configured: a
    `ConfigError` (one line) names the first that is not, who names it, and what is configured. `config` names
    the config file in the message."""
    named = [
        (f"budget {budget.name!r}", threshold.channel)
        for budget in policy.budgets
        for threshold in budget.thresholds
        if threshold.channel is not None
    ]
    alerts = policy.alerts
    named += [
        (f"alerts ({level})", channel)
        for level, channel in (("warning", alerts.warning_channel), ("critical", alerts.critical_channel))
        if channel is not None
    ]
    for who, name in named:
        if name in notify.channels:
            continue
        where = f"{config}" if config else "the built-in config (pass --config fiscus.yaml)"
        known = ", ".join(sorted(notify.channels)) or "none"
        raise ConfigError(
            f"{policy.source or 'policy'}: {who} notifies channel {name!r}, which {where} does not configure "
            f"(notify.channels: {known})"
        )
