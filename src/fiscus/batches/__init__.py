"""Batch work, sans-IO: what both doors (the gateway's batch endpoints and the SDK's wrapped `batches`) share.

A batch's requests are read and sized (`lines`), admitted all or none at batch prices (`admit`), remembered
(`records`, kept by `store`: the one module here that does I/O), and settled once the provider says it ended
(`ended`, `results`, `settle`). Admission and settling are generators of a few operations (`drive`): each door
runs them on its own driver, blocking or awaiting.
"""
