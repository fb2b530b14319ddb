"""The MAASP worker's database side: the MAASP history (``maasp_result``) it writes, and
the annulus config it reads from the database when one is published by hand
(``wims publish-annulus-config``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from services.maasp import metrics as m
from services.maasp.config import ConfigView
from shared.contracts import events as ev
from shared.infrastructure.retry import retry_transient
from shared.persistence.config_events import NEXT_CONFIG_VERSION, annulus_config_event
from shared.persistence.models import Annulus
from shared.persistence.models import CriticalPoint as CriticalPointRow
from shared.persistence.models import MaaspResult as MaaspResultRow

log = logging.getLogger(__name__)


async def store_result(engine: AsyncEngine, view: ConfigView) -> None:
    """One maasp_result row per (annulus, config version): a replay adds none."""
    stmt = (
        pg_insert(MaaspResultRow)
        .values(
            annulus_id=view.annulus_id,
            config_version=view.version,
            maasp_bar=view.maasp_bar,
            limiting_point_id=view.limiting_point_id,
            limiting_point_name=view.limiting_point_name,
            computed_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["annulus_id", "config_version"])
    )

    async def insert() -> None:
        async with engine.begin() as conn:
            await conn.execute(stmt)

    try:
        # The database away: wait for it rather than lose the history row.
        await retry_transient("maasp", "store maasp_result", insert)
    except IntegrityError as exc:
        # The annulus (or its limiting point) is not in the database, e.g. a config
        # published for another install: keep judging readings, skip the history.
        m.MAASP_RESULTS_NOT_STORED.inc()
        log.warning(
            "maasp_result for annulus %s v%s not stored: %s",
            view.annulus_id,
            view.version,
            str(exc.orig).splitlines()[0] if exc.orig else exc,
        )


class UnknownAnnulus(LookupError):
    pass


def next_config_version(session: Session) -> int:
    """A version from the outbox sequence, the one the API's outbox uses for its configs, so
    a config published by hand orders correctly against the API's."""
    return int(session.scalar(NEXT_CONFIG_VERSION))


def annulus_config_from_db(
    session: Session, annulus_id: int, version: int | None = None
) -> ev.AnnulusConfig:
    """The AnnulusConfig of an annulus as it is in the database now.

    ``version`` None takes the next value of the outbox sequence. Raises UnknownAnnulus when
    there is no such annulus.
    """
    annulus = session.get(Annulus, annulus_id)
    if annulus is None:
        raise UnknownAnnulus(f"annulus_id: no annulus {annulus_id} in the database")
    points = session.scalars(
        select(CriticalPointRow)
        .where(CriticalPointRow.annulus_id == annulus_id)
        .order_by(CriticalPointRow.id)
    ).all()
    if version is None:
        version = next_config_version(session)
    return annulus_config_event(annulus, points, version)
