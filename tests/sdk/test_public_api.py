import fiscus

EXPECTED = [
    "Attribution",
    "BreakerConfig",
    "BreakerRegistry",
    "BreakerTripped",
    "BudgetBlocked",
    "BudgetExhausted",
    "CallStatus",
    "ConfigError",
    "Cost",
    "CostEvent",
    "FiscusError",
    "GuardRefused",
    "LoopConfig",
    "LoopDetected",
    "LoopDetectedError",
    "Session",
    "SessionEnded",
    "Usage",
    "acascade",
    "cascade",
    "current_session",
    "session",
    "wrap",
]


def test_public_names():
    assert fiscus.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(fiscus, name) is not None


def test_errors_are_fiscus_errors():
    assert issubclass(fiscus.BudgetExhausted, fiscus.FiscusError)
    assert issubclass(fiscus.BudgetBlocked, fiscus.FiscusError)
    assert issubclass(fiscus.LoopDetectedError, fiscus.GuardRefused)
    assert issubclass(fiscus.GuardRefused, fiscus.FiscusError)
    assert issubclass(fiscus.BudgetBlocked, fiscus.BudgetExhausted)


def test_wrap_refuses_other_objects():
    import pytest

    with pytest.raises(fiscus.FiscusError):
        fiscus.wrap(object(), governor=object())
