from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.config import load_config
from fiscus.errors import ConfigError
from fiscus.events.budget_events import BudgetExhausted, BudgetThresholdCrossed
from fiscus.notify import Notifier, NotifyConfig
from tests.notify.inbox import Inbox, inbox_fixture  # noqa: F401  (the `inbox` fixture)


def crossed(channel: str | None, at: str = "0.8") -> BudgetThresholdCrossed:
    return BudgetThresholdCrossed(
        budget="growth-prod",
        instance="growth-prod",
        window="month:2026-11",
        threshold=Decimal(at),
        action="notify" if channel else "warn",
        utilisation=Decimal("0.81"),
        channel=channel,
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_slack_pagerduty_and_webhook_payloads(inbox: tuple[Inbox, str], monkeypatch: pytest.MonkeyPatch) -> None:
    box, url = inbox
    monkeypatch.setenv("PD_KEY", "R0UTING")
    config = NotifyConfig.model_validate(
        {
            "channels": {
                "slack": {"kind": "slack", "url": f"{url}/slack"},
                "pagerduty": {"kind": "pagerduty", "url": f"{url}/pd", "routing_key_env": "PD_KEY"},
                "ops": {"kind": "webhook", "url": f"{url}/hook"},
            },
            "default": ["ops"],
        }
    )
    notifier = Notifier(config)
    notifier(crossed("slack"))
    notifier(crossed("pagerduty"))
    notifier(
        BudgetExhausted(budget="dev", instance="dev", window="day:2026-11-25", action="partial", utilisation=Decimal(1))
    )
    assert notifier.flush(5)
    by_path = dict(box.received)
    assert by_path["/slack"] == {
        "text": "fiscus: budget growth-prod at 81%: use unknown; notify only (notify); resets 2026-12-01 00:00 UTC"
    }
    pd = by_path["/pd"]
    assert pd["routing_key"] == "R0UTING" and pd["event_action"] == "trigger"
    assert pd["payload"]["severity"] == "warning" and pd["payload"]["custom_details"]["budget"] == "growth-prod"
    assert by_path["/hook"]["event"]["type"] == "budget_exhausted"
    assert notifier.delivered == 3 and notifier.failed == 0


def test_failed_delivery_is_retried(inbox: tuple[Inbox, str]) -> None:
    box, url = inbox
    box.fail_next = 2
    notifier = Notifier(NotifyConfig.model_validate({"channels": {"s": {"kind": "slack", "url": url}}}), backoff_s=0.01)
    notifier(crossed("s"))
    assert notifier.flush(5)
    assert len(box.received) == 1 and notifier.delivered == 1


def test_unreachable_channel_never_raises_into_the_caller() -> None:
    notifier = Notifier(
        NotifyConfig.model_validate({"channels": {"s": {"kind": "slack", "url": "http://127.0.0.1:9/x"}}}),
        backoff_s=0.01,
    )
    notifier(crossed("s"))
    assert notifier.flush(10)
    assert notifier.failed == 1


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "fiscus.yaml"
    cfg.write_text("notify:\n  channels:\n    s: {kind: slack}\n  default: [s]\n")
    with pytest.raises(ConfigError, match=r"notify\.channels\.s.*needs url"):
        load_config(cfg)
    cfg.write_text("notify:\n  default: [nope]\n")
    with pytest.raises(ConfigError, match="unknown channel"):
        load_config(cfg)


def test_governor_from_config_delivers_threshold_events(inbox: tuple[Inbox, str], tmp_path: Path) -> None:
    from fiscus.attribution import Attribution
    from fiscus.config import FiscusConfig
    from fiscus.governor import CallRequest, Governor
    from fiscus.usage import Usage

    box, url = inbox
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "budgets:\n  - name: team\n    scope: {team: growth}\n    window: day\n    limit: {usd: 1}\n"
        "    thresholds:\n      - {at: 0.5, action: notify, channel: finance}\n"
    )
    config = FiscusConfig.model_validate(
        {
            "ledger": f"sqlite:///{tmp_path / 'ledger.db'}",
            "policy": str(policy),
            "notify": {"channels": {"finance": {"kind": "webhook", "url": f"{url}/finance"}}},
        }
    )
    seen: list[object] = []
    governor = Governor.from_config(config, on_event=seen.append)
    try:
        request = CallRequest(
            provider="anthropic",
            model="claude-haiku-4-5",
            attribution=Attribution(team="growth"),
            input_tokens=100_000,
            max_tokens=100,
        )
        for _ in range(8):  # $0.1005 a call; the threshold is crossed on the sixth
            admission = governor.admit(request)
            governor.settle(admission, Usage(input_tokens=100_000, output_tokens=100))
        assert governor.notifier is not None and governor.notifier.flush(5)  # type: ignore[attr-defined]
    finally:
        governor.close()
    crossings = [event for event in seen if type(event).__name__ == "BudgetThresholdCrossed"]
    assert len(crossings) == 1  # once per window, however many calls follow
    assert [path for path, _ in box.received] == ["/finance"]
    assert box.received[0][1]["event"]["budget"] == "team"


def test_summaries_name_a_per_value_instance_by_its_values_only() -> None:
    from fiscus.events.budget_events import BudgetOffPace
    from fiscus.notify.payloads import event_dict, summary

    def line(event: object) -> str:
        return summary(event_dict(event))

    whole = BudgetExhausted(budget="dev", instance="b:dev", window="day:x", action="partial", utilisation=Decimal(1))
    assert line(whole) == (
        "fiscus: budget dev exhausted: use unknown; calls get a partial answer, no model called (partial); never resets"
    )
    per_user = BudgetExhausted(
        budget="per-user", instance="b:per-user|user=ann%20lee", window="day:x", action="block", utilisation=Decimal(1)
    )
    assert line(per_user) == (
        "fiscus: budget per-user (user=ann lee) exhausted: use unknown; calls are refused (429) (block); never resets"
    )
    pace = BudgetOffPace(
        budget="per-user",
        instance="b:per-user|user=bo",
        window="month:x",
        utilisation=Decimal("0.4"),
        projected=Decimal("1.25"),
        exhausts_at=datetime(2026, 12, 24, tzinfo=UTC),
    )
    assert line(pace) == (
        "fiscus: budget per-user (user=bo) at 40% (use unknown) is on pace for 125% by its reset; "
        "at this pace its limit falls 2026-12-24 00:00 UTC"
    )


def test_a_breaker_announcement_names_the_breaker_and_when_it_reopens() -> None:
    from fiscus.events.guard_events import BreakerTripped
    from fiscus.notify.payloads import event_dict, summary

    tripped = BreakerTripped(
        scope="agent:support-bot",
        reason="error_rate",
        message="4 of the last 4 calls failed",
        reopens_at=datetime(2026, 12, 4, 22, 5, tzinfo=UTC),
    )
    assert summary(event_dict(tripped)) == (
        "fiscus: circuit breaker agent:support-bot opened (error_rate): 4 of the last 4 calls failed; "
        "half-open 2026-12-04 22:05 UTC"
    )


def test_a_token_budget_reads_in_its_own_meter_and_dollars() -> None:
    from fiscus.events.budget_events import Standing
    from fiscus.notify.payloads import event_dict, summary

    event = BudgetThresholdCrossed(
        budget="tokens-day",
        instance="b:tokens-day",
        window="day:x",
        threshold=Decimal("0.8"),
        action="warn",
        utilisation=Decimal("0.8"),
        resets_at=datetime(2026, 12, 5, tzinfo=UTC),
        standing=Standing(
            scope=(("agent", "planner"),), spent_usd=Decimal("1234.5"), meter="tokens", used=800_000, limit=1_000_000
        ),
    )
    assert summary(event_dict(event)) == (
        "fiscus: budget tokens-day (agent=planner) at 80%: 800,000 of 1,000,000 tokens used ($1,234.50 spent); "
        "calls carry a warning (warn); resets 2026-12-05 00:00 UTC"
    )


def test_override_announcements_say_for_whom_until_when_and_why() -> None:
    from fiscus.events.override_events import OverrideGranted, OverrideRevoked, OverrideUsed
    from fiscus.notify.payloads import event_dict, summary

    until = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    granted = OverrideGranted("ov_1", "quarter close", until, key_id="vk_1", granted_by="ana")
    assert summary(event_dict(granted)) == (
        "fiscus: override ov_1 granted for key vk_1 until 2026-12-04 23:00 UTC by ana: quarter close"
    )
    used = OverrideUsed("ov_2", ("org-monthly",), key_id="vk_9", agent="planner", team="growth")
    assert summary(event_dict(used)) == (
        "fiscus: override ov_2 let a call by key vk_9 past budget org-monthly; last call by agent planner, team growth"
    )
    past = OverrideUsed("ov_4", (), key_id="vk_9", agent="planner", guards=("agent:planner", "loop"))
    assert summary(event_dict(past)) == (
        "fiscus: override ov_4 let a call by key vk_9 past the open breaker agent:planner, the loop stop; "
        "last call by agent planner"
    )
    assert summary(event_dict(OverrideRevoked("ov_3", budget="org-monthly"))) == (
        "fiscus: override ov_3 for budget org-monthly revoked"
    )
