"""Reference data the ingest path needs on every record, held in memory.

Two maps, read from tables the API service writes: ``annulus`` (id -> well_id, which also
answers "does this annulus exist") and ``scada_tag`` (tag -> annulus_id); the queries are
in store.py. Validation is synchronous and runs tens of thousands of lookups per request,
so it reads plain dicts.

Freshness: the maps are reloaded every ``ingest_lookup_refresh_s`` (a background task), and
also when a request names a tag or annulus the cache does not know: that request waits for
a reload newer than itself, and such reloads run at most once per
``ingest_lookup_miss_refresh_s`` (so a new tag or annulus works on its first push, while
clients hammering with unknown tags cost at most one reload per interval). A deleted tag or
annulus disappears at the next reload; until then its readings are still accepted, and the
sink drops readings of an annulus that no longer exists.
"""

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import store
from services.ingest.errors import describe

log = logging.getLogger(__name__)


class ReferenceCache:
    def __init__(self, engine: AsyncEngine, refresh_s: float, miss_refresh_s: float) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self._miss_refresh_s = miss_refresh_s
        self.well_of: dict[int, int] = {}
        self.tags: dict[str, int] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def reload(self) -> None:
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        well_of, tags = await store.load_references(self._engine)
        # Swap whole dicts: a request validating meanwhile sees one consistent version.
        self.well_of, self.tags = well_of, tags
        self._loaded_at = time.monotonic()

    async def reload_after_miss(self) -> bool:
        """Make the cache at least as fresh as this call; True if it now is.

        Waits out the rest of the miss interval rather than refusing: a tag created a moment
        after the last reload still works on its first push (after <= the interval), while
        any number of concurrent misses share one reload per interval.
        """
        asked = time.monotonic()
        wait = self._loaded_at + self._miss_refresh_s - asked
        if wait > 0:
            await asyncio.sleep(wait)
        async with self._lock:
            if self._loaded_at >= asked:
                return True  # reloaded by someone else after we asked
            try:
                await self._load()
            except Exception as exc:  # the database away: keep serving from the cache
                log.warning("reference reload failed: %s", describe(exc))
                return False
        return True

    def annulus_exists(self, annulus_id: int) -> bool:
        return annulus_id in self.well_of

    def resolve_tag(self, tag: str) -> int | None:
        annulus_id = self.tags.get(tag)
        return annulus_id if annulus_id in self.well_of else None

    async def run_refresher(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("periodic reference reload failed: %s", describe(exc))
