"""What settled calls teach the estimates, pure: `Calibration` (how far the input estimate is from what providers
bill) and `BilledPrefixes` (what a request already billed cost, to bound the next one that extends it).

`Calibration`:

Per (provider, model, agent) and per (provider, model) it keeps a running ratio actual / counted input tokens
(an exponentially weighted mean, integers × SCALE_ONE), so the next estimate of that shape is the count times
the ratio. A text the estimator undercounts (CJK, base64, dense code against characters / 4) raises its
agent's ratio after one call; the budget's bound never depends on it (the hard worst case does that), only how
tightly it is reserved. Bounded: at most `max_keys` shapes, the oldest forgotten first.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

SCALE_ONE = 10**6
_LOWEST, _HIGHEST = SCALE_ONE // 8, 16 * SCALE_ONE  # one wild sample cannot push the ratio past these
_WEIGHT = 4  # each sample moves the ratio a quarter of the way (the first one sets it)
_COST_WEIGHT = 2  # cost ratios fall by halves: a prompt cache warms up within a few calls

Key = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    provider: str
    model: str
    agent: str | None  # None: every agent of this provider and model
    ratio: Decimal  # actual / counted input tokens
    samples: int
    cost_ratio: Decimal | None = None  # settled cost / the reserve's estimate (before this ratio scaled it)


class Calibration:
    def __init__(self, *, max_keys: int = 4096) -> None:
        self.max_keys = max_keys
        self.ratios: dict[Key, int] = {}  # key → ratio × SCALE_ONE
        self._samples: dict[Key, int] = {}
        self.costs: dict[Key, int] = {}  # key → settled cost / estimated cost × SCALE_ONE

    def observe(self, provider: str, model: str, agent: str | None, counted: int, actual: int) -> None:
        """One settled call: `counted` input tokens estimated from the request, `actual` billed (all input,
        cached parts included). Calls with nothing counted or billed teach nothing."""
        if counted <= 0 or actual <= 0:
            return
        sample = min(max(actual * SCALE_ONE // counted, _LOWEST), _HIGHEST)
        keys: tuple[Key, ...] = (
            ((provider, model, agent), (provider, model, None)) if agent else ((provider, model, None),)
        )
        for key in keys:
            old = self.ratios.get(key)
            if old is None:
                if len(self.ratios) >= self.max_keys:
                    oldest = next(iter(self.ratios))
                    del self.ratios[oldest]
                    self._samples.pop(oldest, None)
                self.ratios[key] = sample
            else:
                self.ratios[key] = old + (sample - old) // _WEIGHT
            self._samples[key] = self._samples.get(key, 0) + 1

    def observe_cost(self, provider: str, model: str, agent: str | None, estimated: int, settled: int) -> None:
        """One settled call: its reserve's estimate (nano-dollars, output at the full cap, before any cost
        ratio) and what it cost. Cache reads, answers shorter than their cap: what a shape really costs."""
        if estimated <= 0 or settled < 0:
            return
        sample = min(max(settled * SCALE_ONE // estimated, 1), SCALE_ONE)
        costs = self.costs
        key = (provider, model, agent)
        old = costs.get(key)
        if old is None and len(costs) >= self.max_keys:
            del costs[next(iter(costs))]
        # up at once (a cache gone cold, a long answer: the next reserve is whole again), down by halves
        costs[key] = sample if old is None or sample > old else old + (sample - old) // _COST_WEIGHT

    def cost_ratio(self, provider: str, model: str, agent: str | None) -> int:
        """Settled / estimated cost (× SCALE_ONE) for this shape lately; SCALE_ONE when none was seen."""
        return self.costs.get((provider, model, agent), SCALE_ONE)

    def ratio(self, provider: str, model: str, agent: str | None) -> int:
        """The factor (× SCALE_ONE) for the next estimate: the agent's own, else its model's, else 1."""
        ratios = self.ratios
        found = ratios.get((provider, model, agent)) if agent else None
        if found is None:
            found = ratios.get((provider, model, None))
        return SCALE_ONE if found is None else found

    def copy(self) -> Calibration:
        """An independent copy of what is learned (dict copies are atomic under the GIL: safe beside settles)."""
        other = Calibration(max_keys=self.max_keys)
        other.ratios, other._samples, other.costs = dict(self.ratios), dict(self._samples), dict(self.costs)
        return other

    def snapshot(self) -> dict[str, list[list[object]]]:
        """What is learned, as JSON-ready lists (to keep it beyond this process: `governor.calibration_keeper`)."""
        samples = self._samples
        return {
            "ratios": [[p, m, a, r, samples.get((p, m, a), 0)] for (p, m, a), r in self.ratios.items()],
            "costs": [[p, m, a, c] for (p, m, a), c in self.costs.items()],
        }

    def adopt(self, snapshot: object) -> int:
        """Take from `snapshot` (another process's, or this one's before a restart) every shape not learned here;
        what this process has seen itself stands. Rows that are not well-formed are skipped. Returns how many
        shapes were taken."""
        if not isinstance(snapshot, dict):
            return 0
        taken = 0
        for row in snapshot.get("ratios") or ():
            key = _key(row, 5)
            ratio, count = (row[3], row[4]) if key is not None else (None, None)
            if key is None or key in self.ratios or not _scaled(ratio) or not isinstance(count, int):
                continue
            if len(self.ratios) >= self.max_keys:
                break
            self.ratios[key] = min(max(ratio, _LOWEST), _HIGHEST)  # type: ignore[type-var]
            self._samples[key] = max(0, count)
            taken += 1
        for row in snapshot.get("costs") or ():
            key = _key(row, 4)
            if key is None or key in self.costs or not _scaled(row[3]) or len(self.costs) >= self.max_keys:
                continue
            self.costs[key] = min(max(row[3], 1), SCALE_ONE)
            taken += 1
        return taken

    def rows(self) -> list[CalibrationRow]:
        """Every shape kept, for an operator to read (status, preflight, admin)."""

        def share(value: int) -> Decimal:
            return (Decimal(value) / SCALE_ONE).quantize(Decimal("0.001"))

        costs = self.costs
        return [
            CalibrationRow(
                p,
                m,
                a,
                share(r),
                self._samples.get((p, m, a), 0),
                share(costs[(p, m, a)]) if (p, m, a) in costs else None,
            )
            for (p, m, a), r in sorted(self.ratios.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or ""))
        ]


def _key(row: object, width: int) -> Key | None:
    if not isinstance(row, list) or len(row) != width:
        return None
    provider, model, agent = row[0], row[1], row[2]
    if not isinstance(provider, str) or not isinstance(model, str) or not (agent is None or isinstance(agent, str)):
        return None
    return provider, model, agent


def _scaled(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class BilledPrefixes:
    """Input tokens billed for recent requests, by (provider, model, hash of the request's prefix chain). A
    request whose conversation extends one of them is bounded by that bill plus the bound of what it adds.
    Bounded: at most `max_keys` requests, the oldest forgotten first."""

    def __init__(self, *, max_keys: int = 16_384) -> None:
        self.max_keys = max_keys
        self._billed: dict[tuple[str, str, int], int] = {}

    def __len__(self) -> int:
        return len(self._billed)

    def billed(self, provider: str, model: str, chain: tuple[tuple[int, int], ...], input_tokens: int) -> None:
        """A request with this prefix chain was billed `input_tokens` in all."""
        if not chain or input_tokens <= 0:
            return
        billed = self._billed
        if len(billed) >= self.max_keys:
            del billed[next(iter(billed))]
        billed[(provider, model, chain[-1][0])] = input_tokens

    def bound(self, provider: str, model: str, chain: tuple[tuple[int, int], ...]) -> int | None:
        """The tightest bound the longest billed prefix of `chain` gives; None when none was billed here."""
        billed = self._billed
        for digest, following in reversed(chain):
            found = billed.get((provider, model, digest))
            if found is not None:
                return found + following
        return None
