"""Barriers between the processes of a multi-process (multi-host) run.

JAX's device collectives give a late peer about 30 s to join the first one,
and processes sharing a busy machine, or hosts loading data at different
speeds, can easily be further apart than that. The barrier here runs on the
coordination service that ``jax.distributed.initialize`` started instead,
which waits as long as it is asked to.
"""

from __future__ import annotations

import jax
import orbax.checkpoint as ocp

BARRIER_TIMEOUT_SECONDS = 600


def barrier(name: str, timeout_seconds: int = BARRIER_TIMEOUT_SECONDS) -> None:
    """Blocks until every process has called ``barrier(name)``; no-op alone.

    Every process must pass the same names in the same order. Raises JAX's
    runtime error, naming the barrier, if a process is missing after
    ``timeout_seconds``.
    """
    if jax.process_count() > 1:
        sync = ocp.multihost.get_barrier_sync_fn()
        sync(key=name, timeout_ms=timeout_seconds * 1000)
