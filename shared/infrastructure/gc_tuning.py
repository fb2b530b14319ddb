"""Garbage-collector settings for the long-running services.

CPython's cyclic collector walks every tracked object of a generation each time that
generation is collected. A service holds a large heap that lives as long as the process
(modules, the app, routes, schemas, engines), and a full collection walking it was measured
at 70-120 ms in the API: every request in flight waited for it. The MAASP worker allocates
some hundred thousand short-lived objects per batch (records, values, rows, states), all
alive until the batch is done: the young-generation collections started while it was being
built walked it again and again and promoted it to the older generations, whose collections
walked it once more (measured: 0.5 s of every 6 s of judging).
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_startup_heap() -> None:
    """Collect once, then move everything alive into the permanent generation, which the
    collector never walks.

    Called when a service has started. What is frozen is never freed (it is meant to live
    as long as the process); ``gc.unfreeze()`` gives it back to the collector."""
    gc.collect()
    gc.freeze()


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector runs normally after it.

    For a bounded unit of work whose objects are freed by reference counting when it ends
    (a batch): what it allocates is not walked while alive. Cycles it leaves behind are
    found by the next collection after the block. The switch is process-wide, so keep the
    block short: other tasks that run in it (at its awaits) are not collected either.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
