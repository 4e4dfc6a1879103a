"""Notifications: budget and guard events delivered to Slack, PagerDuty, webhooks or the log."""

from fiscus.notify.channels import ChannelConfig, NotifyConfig
from fiscus.notify.notifier import Notifier
from fiscus.notify.payloads import payload, summary

__all__ = ["ChannelConfig", "Notifier", "NotifyConfig", "payload", "summary"]
