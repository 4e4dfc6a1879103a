"""Shaping: what fiscus changes in a request before it is sent (context compression, partial answers, routing)."""
