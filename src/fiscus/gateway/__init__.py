"""The HTTP gateway: OpenAI- and Anthropic-compatible endpoints in front of the same governor and ledger."""

from fiscus.gateway.app import create_app, run_gateway_in_thread

__all__ = ["create_app", "run_gateway_in_thread"]
