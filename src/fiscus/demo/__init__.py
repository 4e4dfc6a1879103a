"""The demo: a small fleet of agents through the gateway, on the embedded default."""
