"""GET /fleet's well-level rows, kept in memory: every well with its colour, risk and open
tasks, read again only when they may have changed.

The latest integrity snapshot of each well and the latest reading and current MAASP of each
annulus are not aggregated per request: PostgreSQL keeps them, one row per well
(``fleet_well``) and per annulus (``fleet_annulus``), current in the writers' own
transactions (migration 0008; docs/decisions.md, "The fleet read model"). The read model's
SQL is in ``services/api/store.py``; utilisation and level are judged, for all annuli at
once, by ``services/api/core.py`` (``highest_by_well``) with the domain's vectorised rules;
``services/api/processing/queries.py`` (``fleet_json``) puts the answer together.

At 5,000 wells a request's cost is moving 5,000 rows through the driver, not finding them
(measured in docs/decisions.md, "The fleet read model"), so:

- the well-level rows (names, status, colour, risk, open-task counts), which change with an
  integrity snapshot or a task, not with a reading, are kept in memory by ``FleetWells`` and
  read again only when PostgreSQL notifies a change (migration 0009) or a task falls due;
- the annuli, whose readings change every second, are read on every request, as one row of
  packed columns (``float8send``/``int8send`` aggregated into one ``bytea`` per column, read
  by numpy in microseconds) instead of 10,000 rows of Python objects;
- each well's ``assessment_gaps`` is passed through as the JSON text PostgreSQL holds
  (``orjson.Fragment``), not parsed and serialised again;
- filters apply to the rows in memory.
"""

import asyncio
import logging
import time
from typing import Any

import psycopg

from services.api import store
from services.api.metrics import FLEET_WELL_ROWS

log = logging.getLogger(__name__)


class FleetWells:
    """The well-level rows of GET /fleet (a well's names and status, its latest snapshot's
    colour and risk, its open-task counts), kept in memory and read again only when they
    may have changed: on a notification from migration 0009's triggers, when an open task
    falls due (its overdue count changes with no write), and at least every ``max_age_s``.
    The utilisation part changes with every reading and is read on every request.

    Before reusing the rows, a request makes one round trip on the listening connection:
    PostgreSQL delivers every pending notification before it answers, and a notification is
    queued when its transaction commits, so every commit made before the request is heard
    first (a client that writes and then reads sees its write). While the listening
    connection is down, nothing is reused: every request reads, and a connection is tried
    again at most once a second. ``max_age_s`` 0 turns the reuse off.
    """

    def __init__(self, libpq_url: str, max_age_s: float) -> None:
        self._url = libpq_url
        self._max_age_s = max_age_s
        self._listener: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        # Notifications heard (and listening connections lost): the version of the sources.
        self._changes = 0
        self._rows: list[tuple] | None = None
        self._rows_version = -1
        self._rows_until = 0.0  # time.monotonic()

    async def rows(self, conn: Any) -> list[tuple]:
        """Every well's row (``store.fleet_well_rows``), current as of this call; ``conn``
        reads them when they have to be read."""
        if not await self._caught_up():
            FLEET_WELL_ROWS.labels("database").inc()
            return (await store.fleet_well_rows(conn))[0]
        if (
            self._rows is not None
            and self._rows_version == self._changes
            and time.monotonic() < self._rows_until
        ):
            FLEET_WELL_ROWS.labels("memory").inc()
            return self._rows
        FLEET_WELL_ROWS.labels("database").inc()
        version = self._changes  # a change heard while reading makes the next call read
        rows, valid_s = await store.fleet_well_rows(conn)
        self._rows, self._rows_version = rows, version
        self._rows_until = time.monotonic() + min(self._max_age_s, valid_s)
        return rows

    async def _caught_up(self) -> bool:
        """True once every notification of a commit made before this call has been heard;
        False when that cannot be known (no listening connection)."""
        if self._max_age_s <= 0:
            return False
        async with self._lock:
            try:
                if self._listener is None:
                    if time.monotonic() < self._retry_at:
                        return False
                    self._retry_at = time.monotonic() + 1.0
                    listener = await store.connect_fleet_listener(self._url)
                    listener.add_notify_handler(self._heard)
                    self._listener = listener
                    await store.listen_for_fleet_changes(listener)
                    self._changes += 1  # whatever changed while nobody listened
                else:
                    await store.round_trip(self._listener)
                return True
            except psycopg.Error as exc:
                log.warning("fleet: not listening for changes (%r); reading on every request", exc)
                await self._drop()
                return False

    def _heard(self, _notify: psycopg.Notify) -> None:
        self._changes += 1

    async def _drop(self) -> None:
        self._changes += 1
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def keep_listening(self, interval_s: float = 5.0) -> None:
        """Background: between requests, take the notifications off the connection (so
        they do not queue up in PostgreSQL for an idle API) and reconnect a lost one."""
        while True:
            await self._caught_up()
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
