"""Transactional outbox: config and barrier events written with the change, relayed to Kafka.

Writers (the handlers) call ``queue_annulus_config`` / ``queue_well_config`` /
``queue_barrier_event`` inside the request's transaction, so an event exists if and only
if its change committed: a rolled-back change leaves nothing to publish. What an event is
built from, and the row that queues it, are read and written by ``services/api/store.py``;
the relay that publishes the rows is ``services/api/publisher.py`` (``OutboxRelay``).

The config events carry ``version`` = their outbox row id: it grows with every change (one
sequence for the whole table), so a consumer can tell the newer of two configs apart even
if it sees them out of order. Keys are the annulus or well id as ASCII bytes, like every
WIMS producer.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from services.api import store
from services.api.core import well_config_event
from shared.contracts import events as ev
from shared.contracts import topics
from shared.persistence.config_events import annulus_config_event
from shared.persistence.models import Annulus, CriticalPoint, Well


async def queue_annulus_config(
    session: AsyncSession, annulus: Annulus, *, deleted: bool = False
) -> None:
    """Everything the MAASP worker needs for ``annulus``, as it is in this transaction."""
    points: list[CriticalPoint] = []
    if not deleted:
        points = await store.critical_points(session, annulus.id)
    oid = await store.next_outbox_id(session)
    event = annulus_config_event(annulus, points, oid, deleted=deleted)
    store.add_outbox_row(session, topics.ANNULUS_CONFIG, annulus.id, event, oid)


async def queue_well_config(session: AsyncSession, well: Well, *, deleted: bool = False) -> None:
    """The well's annuli, barrier elements (with envelope type, status, test dates) and
    consequence level, as they are in this transaction."""
    annuli: list = []
    elements: list = []
    cement: list = []
    if not deleted:
        # The number of critical points tells the integrity worker whether an annulus has a
        # MAASP at all, i.e. whether the well can be fully assessed.
        annuli = await store.annuli_with_point_counts(session, well.id)
        elements = await store.barrier_elements_with_envelope_type(session, well.id)
        cement = await store.cement_intervals(session, well.id)
    oid = await store.next_outbox_id(session)
    event = well_config_event(well, annuli, elements, cement, oid, deleted=deleted)
    store.add_outbox_row(session, topics.WELL_CONFIG, well.id, event, oid)


async def queue_barrier_event(
    session: AsyncSession, event: ev.ElementStatusChanged | ev.BarrierTestRecorded
) -> None:
    oid = await store.next_outbox_id(session)
    store.add_outbox_row(session, topics.BARRIER_EVENTS, event.well_id, event, oid)
