"""The four roles. Each is a coroutine `run(resources, stop)` that returns when `stop` is set."""

from __future__ import annotations

import gc

# Young objects a garbage-collection pass waits for (CPython's default is 700).
GC_YOUNG = 10_000


def tune_gc() -> None:
    """Fewer, smaller garbage-collection passes: every role handles bursts.

    A burst allocates many short-lived objects per job (requests, headers, rows, log
    records). With CPython's defaults the collector ran 120+ times during S1b's
    1,000-job burst in the worker and took 50-130 ms of its ~400 ms, a full pass over
    every long-lived object alone 20-60 ms (py-spy and gc.callbacks). `gc.freeze()` moves
    what is alive now (modules, settings, pools, clients) out of the collector's sight, so
    full passes no longer walk it, and the larger young generation lets a burst's objects
    die before a pass looks at them: 4-5 passes, 15-35 ms. Process-wide and idempotent;
    memory grows by at most GC_YOUNG objects' worth of uncollected cycles.
    """
    gc.freeze()
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG, young), older, oldest)
