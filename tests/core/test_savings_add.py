from dataclasses import fields
from decimal import Decimal

from fiscus.events.savings import LEVERS, Savings


def test_every_lever_is_a_field_and_add_sums_each_of_them() -> None:
    assert tuple(f.name for f in fields(Savings)) == LEVERS  # `add` names each field: a new lever must join it
    total = Savings(**{lever: Decimal(i + 1) / 10**9 for i, lever in enumerate(LEVERS)})
    total.add(Savings(**{lever: Decimal(10 * (i + 1)) for i, lever in enumerate(LEVERS)}))
    assert total.by_lever() == {lever: Decimal(10 * (i + 1)) + Decimal(i + 1) / 10**9 for i, lever in enumerate(LEVERS)}
