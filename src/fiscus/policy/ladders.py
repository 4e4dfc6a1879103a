"""Model tier ladders: where a downgrade goes. One step down per decision, never two."""

from __future__ import annotations

from dataclasses import dataclass

# Per provider family, tiers from most to least capable. A tier lists the model names (prefixes) that belong
# to it; a downgrade into a tier goes to its first name.
DEFAULT_LADDERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "claude": (
        ("claude-opus-4-5", "claude-opus-4-1", "claude-opus-4", "claude-3-opus"),
        ("claude-sonnet-4-5", "claude-sonnet-4", "claude-3-7-sonnet", "claude-3-5-sonnet"),
        ("claude-haiku-4-5", "claude-3-5-haiku", "claude-3-haiku"),
    ),
    "gpt-5": (("gpt-5",), ("gpt-5-mini",), ("gpt-5-nano",)),
    "gpt-4o": (("gpt-4o",), ("gpt-4o-mini",)),
    "gemini": (
        ("gemini-2.5-pro", "gemini-1.5-pro"),
        ("gemini-2.5-flash", "gemini-2.0-flash", "gemini-1.5-flash"),
        ("gemini-2.5-flash-lite", "gemini-2.0-flash-lite"),
    ),
}


@dataclass(frozen=True, slots=True)
class Tier:
    ladder: str
    index: int
    name: str  # the tier's first model name, its label


@dataclass(frozen=True, slots=True)
class Ladders:
    ladders: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]

    @classmethod
    def defaults(cls) -> Ladders:
        return cls(tuple(DEFAULT_LADDERS.items()))

    def merged(self, overrides: dict[str, tuple[tuple[str, ...], ...]]) -> Ladders:
        """Policy ladders replace default ladders of the same family name and add new ones."""
        merged = dict(self.ladders)
        merged.update(overrides)
        return Ladders(tuple(merged.items()))

    def tier_of(self, model: str) -> Tier | None:
        """The tier whose name is the longest prefix of `model` (so gpt-5-mini is not read as gpt-5)."""
        best: tuple[int, Tier] | None = None
        bare = model.rsplit("/", 1)[-1]
        for ladder, tiers in self.ladders:
            for index, names in enumerate(tiers):
                for name in names:
                    if _matches(bare, name) and (best is None or len(name) > best[0]):
                        best = (len(name), Tier(ladder, index, names[0]))
        return best[1] if best else None

    def routed(self, model: str, choices: tuple[str, ...]) -> str | None:
        """The model among `choices` on `model`'s ladder at another tier (task-class routing moves a call within
        its family, up or down); None when none is, or when `model` is already at that tier."""
        tier = self.tier_of(model)
        if tier is None:
            return None
        for choice in choices:
            target = self.tier_of(choice)
            if target is not None and target.ladder == tier.ladder:
                return choice if target.index != tier.index else None
        return None

    def cheapest(self, model: str) -> str | None:
        """The first model of the last tier on `model`'s ladder; None off every ladder."""
        tier = self.tier_of(model)
        return dict(self.ladders)[tier.ladder][-1][0] if tier is not None else None

    def one_down(self, model: str) -> str | None:
        """The model one tier below `model`, or None at the bottom of its ladder or off every ladder."""
        tier = self.tier_of(model)
        if tier is None:
            return None
        tiers = dict(self.ladders)[tier.ladder]
        if tier.index + 1 >= len(tiers):
            return None
        return tiers[tier.index + 1][0]


def _matches(model: str, name: str) -> bool:
    # A prefix match must end at a version/date boundary: "gpt-5-2025-08-07" is gpt-5, "gpt-5-mini" is not.
    if model == name:
        return True
    if not model.startswith(name) or model[len(name)] != "-":
        return False
    rest = model[len(name) + 1 :]
    return rest[:1].isdigit() or rest in ("latest", "preview") or rest.startswith(("preview", "exp"))
