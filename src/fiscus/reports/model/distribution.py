"""`Distribution`: how a count in a workload spec varies from run to run (steps, tokens added, output length).

Written in the spec as a plain number (always that), `{uniform: [low, high]}` (every whole number between, equally
likely), `{p50: a, p95: b}` (a log-normal through those two percentiles: token counts are skewed to the right)
or `{choices: {value: weight, ...}}`. Samples are whole numbers; the RNG is the caller's (seeded) one.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_Z95 = 1.6448536269514722  # the standard normal's 95th percentile


class Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fixed: int | None = Field(default=None, ge=0)
    uniform: tuple[int, int] | None = None
    p50: int | None = Field(default=None, gt=0)
    p95: int | None = Field(default=None, gt=0)
    choices: dict[int, Decimal] | None = None
    max: int | None = Field(default=None, ge=0, description="no sample above this")

    @model_validator(mode="after")
    def _one_form(self) -> Distribution:
        forms = [self.fixed is not None, self.uniform is not None, self.p50 is not None, self.choices is not None]
        if sum(forms) != 1:
            raise ValueError("give a number, {uniform: [low, high]}, {p50: a, p95: b} or {choices: {value: weight}}")
        if self.uniform is not None and not 0 <= self.uniform[0] <= self.uniform[1]:
            raise ValueError("uniform: expected [low, high] with 0 <= low <= high")
        if (self.p50 is None) != (self.p95 is None):
            raise ValueError("give both p50 and p95")
        if self.p50 is not None and self.p95 is not None and self.p95 < self.p50:
            raise ValueError("p95 must be at least p50")
        choices = self.choices
        if choices is not None and (not choices or any(v < 0 for v in choices) or min(choices.values()) <= 0):
            raise ValueError("choices: expected {value: weight} with values >= 0 and weights > 0")
        return self

    @property
    def constant(self) -> int | None:
        """The value when the distribution cannot vary, else None."""
        if self.fixed is not None:
            return self._capped(self.fixed)
        if self.uniform is not None and self.uniform[0] == self.uniform[1]:
            return self._capped(self.uniform[0])
        if self.p50 is not None and self.p50 == self.p95:
            return self._capped(self.p50)
        if self.choices is not None and len(self.choices) == 1:
            return self._capped(next(iter(self.choices)))
        return None

    def sample(self, rng: random.Random) -> int:
        if self.fixed is not None:
            return self._capped(self.fixed)
        if self.uniform is not None:
            return self._capped(rng.randint(*self.uniform))
        if self.p50 is not None and self.p95 is not None:
            mu = math.log(self.p50)
            sigma = (math.log(self.p95) - mu) / _Z95
            return self._capped(round(rng.lognormvariate(mu, sigma)))
        assert self.choices is not None
        values = list(self.choices)
        return self._capped(rng.choices(values, weights=[float(w) for w in self.choices.values()])[0])

    def mean(self) -> float:
        """The expected value (a float: it only sizes how often calls come, never money)."""
        if self.constant is not None:
            return float(self.constant)
        if self.uniform is not None:
            low, high = self.uniform
            if self.max is not None:
                high = min(high, self.max)
            return (low + high) / 2
        if self.p50 is not None and self.p95 is not None:
            sigma = (math.log(self.p95) - math.log(self.p50)) / _Z95
            mean = self.p50 * math.exp(sigma * sigma / 2)
            return mean if self.max is None else min(mean, float(self.max))
        assert self.choices is not None
        total = float(sum(self.choices.values()))
        return sum(self._capped(v) * float(w) for v, w in self.choices.items()) / total

    def median(self) -> int:
        """The distribution's P50, as the spec states it (what calibration compares the ledger with)."""
        if self.fixed is not None:
            return self._capped(self.fixed)
        if self.uniform is not None:
            return self._capped((self.uniform[0] + self.uniform[1]) // 2)
        if self.p50 is not None:
            return self._capped(self.p50)
        assert self.choices is not None
        total = sum(self.choices.values())
        seen = Decimal(0)
        for value in sorted(self.choices):
            seen += self.choices[value]
            if seen * 2 >= total:
                return self._capped(value)
        return self._capped(max(self.choices))  # pragma: no cover - the loop always returns

    def _capped(self, value: int) -> int:
        return value if self.max is None else min(value, self.max)


def _from_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number of tokens or steps, not true/false")
    if isinstance(value, int):
        return {"fixed": value}
    if isinstance(value, float) and value.is_integer():
        return {"fixed": int(value)}
    return value


# A distribution as the spec writes it: a plain whole number is `{fixed: n}`.
Amount = Annotated[Distribution, BeforeValidator(_from_number)]
ZERO = Distribution(fixed=0)
ONE = Distribution(fixed=1)
