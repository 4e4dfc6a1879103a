"""The names `fiscus.ledger` exports are its public API."""

import fiscus.ledger


def test_exports() -> None:
    assert sorted(fiscus.ledger.__all__) == [
        "GROUP_KEYS",
        "Ledger",
        "LedgerWriter",
        "SpendQuery",
        "SpendRow",
        "UnknownDimensionError",
        "open_ledger",
    ]
    for name in fiscus.ledger.__all__:
        assert hasattr(fiscus.ledger, name)
