"""`CallRequest`: what the engine needs to know about one call before it is made."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fiscus.attribution import Attribution

PRIORITIES = ("critical", "normal", "background")


@dataclass(slots=True, unsafe_hash=True)
class CallRequest:
    """Immutable by convention (derive a changed one with `dataclasses.replace`): one is built per call, and a
    frozen dataclass costs twice as much to build."""

    provider: str  # "openai" | "anthropic" | "google" | a configured provider name
    model: str  # as requested by the caller
    attribution: Attribution
    input_tokens: int  # counted/estimated input tokens of the request as it would be sent
    max_tokens: int | None = None  # caller's output cap; None → the policy's default cap
    priority: str = "normal"  # "critical" | "normal" | "background"
    # Overrides in force for this call: (budget name, or "*" for every budget, override id). Each lets the call
    # past the refusals the policy marks overridable on that budget; the id goes into the ledger.
    overrides: tuple[tuple[str, str], ...] = ()
    # Guard refusals a key's override let the call past before admission: (breaker scope, or "loop", override
    # id). The id goes into the ledger with the budgets' overrides when the call is admitted.
    passed: tuple[tuple[str, str], ...] = ()
    batch: bool = False
    calls: int = 1  # task pre-flight: reserve for N calls of this shape up front
    # Whether the request may write the provider's prompt cache (Anthropic `cache_control` markers). True is the
    # conservative default: input is reserved at the dearest cache-write price. False reserves at plain input.
    cache_writes: bool = True
    # The most input tokens that may be written to cache (those up to the last cache breakpoint); None: all.
    cache_write_tokens: int | None = None
    # Of those, the ones up to the last breakpoint that asks for the 1 h TTL; None: all may be 1 h writes.
    cache_write_1h_tokens: int | None = None
    # Hard upper bounds of the input and of the two prefixes above, whatever the provider's tokenizer: UTF-8
    # bytes of the text for byte-level BPE (a token is at least one byte), or the exact count of the model's
    # own tokenizer, plus framing. None: the (scaled) estimate stands for the bound.
    input_bound: int | None = None
    # Per message of the conversation: (hash of the request up to it, bound of what follows it), so a request
    # that extends one billed before is bounded by that bill plus what it adds (`usage.bounds.prefix_chain`).
    input_chain: tuple[tuple[int, int], ...] = ()
    cache_write_bound: int | None = None
    cache_write_1h_bound: int | None = None
    # The door can have the provider count this input exactly (Anthropic's count_tokens), which it does only
    # when the byte bound, not the estimate, stops the call near a limit (`Decision.count_helps`).
    countable: bool = False
    # `input_tokens` is the provider's count for `exact_model`, and `exact_bound` the bound it gives; the engine
    # takes that bound only while the call goes to that model (a route elsewhere keeps the byte bound).
    input_exact: bool = False
    exact_bound: int | None = None
    exact_model: str = ""

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValueError(f"CallRequest.priority must be one of {', '.join(PRIORITIES)}, got {self.priority!r}")
        if self.input_tokens < 0:
            raise ValueError("CallRequest.input_tokens must not be negative")
        if self.input_bound is not None and self.input_bound < 0:
            raise ValueError("CallRequest.input_bound must not be negative")
        if self.calls < 1:
            raise ValueError("CallRequest.calls must be at least 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("CallRequest.max_tokens must be at least 1 when given")

    def counted(self, tokens: int, bound: int) -> CallRequest:
        """This request with its input counted exactly by the provider for its model: `tokens`, bounded by `bound`
        on that model (the byte bound stays for any other)."""
        return replace(
            self, input_tokens=tokens, countable=False, input_exact=True, exact_bound=bound, exact_model=self.model
        )

    def hard_input_bound(self) -> int | None:
        """The input's hard bound on the model this request names: the provider's count where it counted for
        it, else the byte bound."""
        bound = self.input_bound
        if self.exact_bound is not None and self.exact_model == self.model:
            return self.exact_bound if bound is None else min(bound, self.exact_bound)
        return bound
