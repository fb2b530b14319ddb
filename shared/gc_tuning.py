"""Garbage-collector settings for the long-running services.

CPython's cyclic collector walks every tracked object of a generation each time that
generation is collected. A service holds a large heap that lives as long as the process
(modules, the app, routes, schemas, engines), and a full collection walking it was measured
at 70-120 ms in the API: every request in flight waited for it. The MAASP worker allocates
some hundred thousand short-lived objects per batch (records, values, rows), which under
the default young-generation threshold (700 allocations) started a collection every few
hundred readings, each walking the batch that was still alive.
"""

import gc


def freeze_startup_heap(young_threshold: int | None = None) -> None:
    """Collect once, then move everything alive into the permanent generation, which the
    collector never walks; optionally collect the young generation less often.

    Called when a service has started. What is frozen is never freed (it is meant to live
    as long as the process); ``gc.unfreeze()`` gives it back to the collector."""
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, older, oldest)
