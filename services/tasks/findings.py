"""The daily-findings sweep: missing data, 30 CFR 250.521 re-test and annulus communication,
judged over the stored readings and alert history; their alerts go to wims.alerts, where the
tasks rules turn them into tasks like any other alert.

Why a sweep over stored data (docs/decisions.md "Daily findings run as a sweep"): staleness is
the *absence* of readings, which no stream event announces, so it needs a timer; communication
compares two annuli of one well, whose readings the maasp worker sees on different partitions
(keyed by annulus); the re-test compares the readings with the last diagnostic test, which is
in the alert history. The stored readings and alerts have all of it in one place.

The statements the sweep runs are in ``store.py`` (the service's SQL); this module judges what
they return and decides what to send and record.

Raised once, cleared once, across sweeps and restarts: the ``finding_state`` table holds every
finding raised and not cleared, with its episode. A sweep first sends its alerts (waiting for
Kafka's ack) and then commits the state; a crash in between re-sends the same alerts on the
next sweep, with the same ids (derived from the episode), which every consumer deduplicates.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import permutations
from typing import Any

import numpy as np
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tasks import store
from shared.contracts.enums import AlertKind, Severity
from shared.contracts.events import Alert, derived_id, utcnow
from shared.domain.communication import (
    DEFAULT_COMMUNICATION_PARAMS,
    Communication,
    CommunicationParams,
    detect_communication,
)
from shared.domain.missing_data import (
    DATA_STALE_AFTER_S,
    MAASP_MISSING_GRACE_S,
    is_maasp_missing,
    is_stale,
    stale_after,
    stale_since,
)
from shared.domain.retest import RETEST_RISE_BAR, RETEST_SUSTAIN_S, retest_due
from shared.domain.sap import DEFAULT_SAP_PARAMS
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)

RETEST = "diagnostic_retest"
"""State kind of a re-test (its alert is a diagnostic_test_due)."""
TEST_HELD_S = DEFAULT_SAP_PARAMS.bleed_max_duration_s / 4
"""The pressure at a test is the median over this time before its bleed-down began: the SAP
detector recognises a bleed only from a level held that long."""

Publish = Callable[[Sequence[Alert]], Awaitable[None]]
State = dict[tuple[str, str], str]


@dataclass(frozen=True)
class FindingsConfig:
    """The findings' parameters (WIMS defaults; docs/domain.md)."""

    data_stale_after_s: float = DATA_STALE_AFTER_S
    maasp_missing_grace_s: float = MAASP_MISSING_GRACE_S
    retest_rise_bar: float = RETEST_RISE_BAR
    retest_sustain_s: float = RETEST_SUSTAIN_S
    communication: CommunicationParams = DEFAULT_COMMUNICATION_PARAMS
    communication_repeat_s: float = 7 * 86400.0
    """A pair of annuli found communicating is raised again only for a step this much later
    (its task stays open meanwhile; repeated bleeds do not flood the alert list)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> FindingsConfig:
        return cls(
            data_stale_after_s=settings.data_stale_after_s,
            maasp_missing_grace_s=settings.maasp_missing_grace_s,
            retest_rise_bar=settings.retest_rise_bar,
            retest_sustain_s=settings.retest_sustain_s,
        )


@dataclass(frozen=True)
class Change:
    """An alert to send (None: none) and the state it leaves: ``episode`` None clears
    (deletes) the row."""

    alert: Alert | None
    kind: str
    subject: str
    episode: str | None


@dataclass
class FindingsReport:
    raised: list[Alert] = field(default_factory=list)
    cleared: list[Alert] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        kinds = sorted(a.kind.value for a in [*self.raised, *self.cleared])
        return (
            f"findings: {len(self.raised)} raised, {len(self.cleared)} cleared "
            f"({self.seconds:.2f} s) {kinds}"
        )


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _alert(
    kind: AlertKind,
    severity: Severity,
    episode_parts: tuple[Any, ...],
    row: Any,
    ts: datetime,
    message: str,
    **details: Any,
) -> Alert:
    return Alert(
        event_id=derived_id(*episode_parts),
        kind=kind,
        severity=severity,
        well_id=row.well_id,
        annulus_id=row.annulus_id,
        ts=ts,
        message=message,
        pressure_bar=details.pop("pressure_bar", None),
        maasp_bar=details.pop("maasp_bar", None),
        details={"annulus_name": row.annulus_name, **details},
    )


# --------------------------------------------------------------------------- missing data


async def _data_stale(
    conn: AsyncConnection, cfg: FindingsConfig, state: State, now: datetime
) -> list[Change]:
    """data_stale for an annulus with a tag and no recent good reading; cleared when fresh."""
    out: list[Change] = []
    seen: set[str] = set()
    for row in await store.monitored_annuli(conn):
        subject = f"annulus:{row.annulus_id}"
        seen.add(subject)
        after = stale_after(row.data_stale_after_s, cfg.data_stale_after_s)
        since = stale_since(row.last_good, row.mapped_at)
        episode = state.get((AlertKind.data_stale.value, subject))
        stale = is_stale(row.last_good, row.mapped_at, now, after)
        where = f"annulus {row.annulus_name} of well {row.well_name}"
        if stale and episode is None:
            what = "no good reading since" if row.last_good else "no good reading ever; tag mapped"
            msg = f"{where}: {what} {since:%Y-%m-%d %H:%M:%S} UTC (over {after:g} s): data stale"
            alert = _alert(
                AlertKind.data_stale,
                Severity.warning,
                (row.annulus_id, "data_stale", _iso(since)),
                row,
                since + timedelta(seconds=after),
                msg,
                last_good_reading=_iso(row.last_good) if row.last_good else None,
                stale_after_s=after,
            )
            out.append(Change(alert, AlertKind.data_stale.value, subject, _iso(since)))
        elif not stale and episode is not None:
            alert = _alert(
                AlertKind.data_stale_cleared,
                Severity.info,
                (row.annulus_id, "data_stale_cleared", episode),
                row,
                row.last_good,
                f"{where}: good readings again (last {row.last_good:%Y-%m-%d %H:%M:%S} UTC)",
                last_good_reading=_iso(row.last_good),
            )
            out.append(Change(alert, AlertKind.data_stale.value, subject, None))
    return out + _forget_unmonitored(AlertKind.data_stale, state, seen, now)


async def _maasp_missing(
    conn: AsyncConnection, cfg: FindingsConfig, state: State, now: datetime
) -> list[Change]:
    """maasp_missing once for an annulus without a MAASP; cleared when it has one."""
    out: list[Change] = []
    seen: set[str] = set()
    for row in await store.annuli_latest_maasp(conn):
        subject = f"annulus:{row.annulus_id}"
        seen.add(subject)
        has_result = row.config_version is not None
        missing = is_maasp_missing(
            has_result, row.maasp_bar, row.created_at, now, cfg.maasp_missing_grace_s
        )
        raised = state.get((AlertKind.maasp_missing.value, subject))
        where = f"annulus {row.annulus_name} of well {row.well_name}"
        if missing and raised is None:
            # The episode is the MAASP result found missing: deterministic, so a re-sent
            # alert keeps its id.
            episode = f"v{row.config_version}" if has_result else "none"
            alert = _alert(
                AlertKind.maasp_missing,
                Severity.warning,
                (row.annulus_id, "maasp_missing", episode),
                row,
                now,
                f"{where}: no MAASP (no critical points): its pressure cannot be judged",
            )
            out.append(Change(alert, AlertKind.maasp_missing.value, subject, episode))
        elif not missing and raised is not None:
            alert = _alert(
                AlertKind.maasp_missing_cleared,
                Severity.info,
                (row.annulus_id, "maasp_missing_cleared", raised),
                row,
                now,
                f"{where}: MAASP {row.maasp_bar:.1f} bar",
                maasp_bar=row.maasp_bar,
            )
            out.append(Change(alert, AlertKind.maasp_missing.value, subject, None))
    return out + _forget_unmonitored(AlertKind.maasp_missing, state, seen, now)


def _forget_unmonitored(
    kind: AlertKind, state: State, seen: set[str], now: datetime
) -> list[Change]:
    """Rows of annuli no longer judged (tag unmapped, annulus deleted, well abandoned) are
    dropped without an alert: nothing is left on screen that an operator could act on, and a
    deleted annulus has no well to name."""
    return [
        Change(None, kind.value, subject, None)
        for (k, subject) in state
        if k == kind.value and subject not in seen
    ]


# --------------------------------------------------------------------------- re-test


async def _retests(
    conn: AsyncConnection, cfg: FindingsConfig, state: State, now: datetime
) -> list[Change]:
    """diagnostic_test_due once per diagnostic test whose pressure has since risen more than
    ``retest_rise_bar`` (30 CFR 250.521)."""
    out: list[Change] = []
    for row in await store.last_diagnostic_tests(conn):
        subject = f"annulus:{row.annulus_id}"
        if row.episode_start is None or state.get((RETEST, subject)) == row.episode_start:
            continue  # no test time recorded, or this test's re-test already raised
        test_at = datetime.fromisoformat(row.episode_start)
        test_p = await store.pressure_at_test(conn, row.annulus_id, test_at, TEST_HELD_S)
        if test_p is None:
            continue  # no reading at the test: nothing to compare with
        rows = await store.readings_after_test(conn, row.annulus_id, test_at)
        if not rows:
            continue
        # (``Row.t`` is the row as a tuple: the column is named ``at_s``.)
        t = np.fromiter((float(r.at_s) for r in rows), np.float64, len(rows))
        p = np.fromiter((r.p for r in rows), np.float64, len(rows))
        due = retest_due(
            test_at.timestamp(), test_p, t, p, cfg.retest_rise_bar, cfg.retest_sustain_s
        )
        if due is None:
            continue
        msg = (
            f"annulus {row.annulus_name} of well {row.well_name}: pressure {due.pressure_bar:.1f}"
            f" bar, more than {cfg.retest_rise_bar:g} bar (200 psig) above the "
            f"{test_p:.1f} bar of the diagnostic test at {test_at:%Y-%m-%d %H:%M:%S} UTC: "
            "diagnostic test due again (30 CFR 250.521)"
        )
        alert = _alert(
            AlertKind.diagnostic_test_due,
            Severity.warning,
            (row.annulus_id, RETEST, row.episode_start),
            row,
            _dt(due.ts),
            msg,
            pressure_bar=due.pressure_bar,
            rule="30 CFR 250.521",
            test_at=row.episode_start,
            test_pressure_bar=test_p,
            limit_bar=due.limit_bar,
            above_since=_iso(_dt(due.above_since)),
        )
        out.append(Change(alert, RETEST, subject, row.episode_start))
    return out


# --------------------------------------------------------------------------- communication


async def _communication(
    conn: AsyncConnection, cfg: FindingsConfig, state: State, now: datetime
) -> list[Change]:
    """annulus_communication for a pair of annuli of one well, the newest step of one that the
    other answered, once per pair within ``communication_repeat_s``."""
    wells: dict[int, list[Any]] = defaultdict(list)
    for row in await store.annuli_newest_good(conn):
        wells[row.well_id].append(row)
    out: list[Change] = []
    lookback = timedelta(seconds=cfg.communication.lookback_s)
    for annuli in wells.values():
        if len(annuli) < 2:
            continue
        since = max(r.newest for r in annuli) - lookback
        ids = [r.annulus_id for r in annuli]
        series: dict[int, list[tuple[float, float]]] = defaultdict(list)
        for r in await store.good_readings_since(conn, ids, since):
            series[r.annulus_id].append((float(r.at_s), r.p))
        pairs: dict[str, tuple[Any, Any, Communication]] = {}
        for src, resp in permutations(annuli, 2):
            s, r = np.array(series[src.annulus_id]), np.array(series[resp.annulus_id])
            if len(s) < 2 or len(r) < 2:
                continue
            found = detect_communication(s[:, 0], s[:, 1], r[:, 0], r[:, 1], cfg.communication)
            lo, hi = sorted((src.annulus_id, resp.annulus_id))
            subject = f"annuli:{lo}-{hi}"
            for c in found:
                # Both annuli of a communicating pair move, so each is seen answering the
                # other; the one operated on made the larger step: it is the source.
                if subject not in pairs or abs(c.step_bar) > abs(pairs[subject][2].step_bar):
                    pairs[subject] = (src, resp, c)
        for subject, (src, resp, c) in pairs.items():
            last = state.get((AlertKind.annulus_communication.value, subject))
            if last is not None and c.step_end < float(last) + cfg.communication_repeat_s:
                continue
            out.append(_communication_change(subject, src, resp, c))
    return out


def _communication_change(subject: str, src: Any, resp: Any, c: Communication) -> Change:
    episode = repr(c.step_end)
    msg = (
        f"annulus {resp.annulus_name} of well {resp.well_name} answered a {c.direction} of "
        f"annulus {src.annulus_name} ({c.step_bar:+.1f} bar by "
        f"{_dt(c.step_end):%Y-%m-%d %H:%M:%S} UTC) with {c.response_bar:+.1f} bar: "
        f"communication between annuli {src.annulus_name} and {resp.annulus_name}"
    )
    alert = _alert(
        AlertKind.annulus_communication,
        Severity.warning,
        (subject, "annulus_communication", episode),
        resp,
        _dt(c.step_end),
        msg,
        other_annulus_id=src.annulus_id,
        other_annulus_name=src.annulus_name,
        direction=c.direction,
        step_bar=c.step_bar,
        response_bar=c.response_bar,
        step_start=_iso(_dt(c.step_start)),
        step_end=_iso(_dt(c.step_end)),
    )
    return Change(alert, AlertKind.annulus_communication.value, subject, episode)


# --------------------------------------------------------------------------- the sweep

CHECKS = (_data_stale, _maasp_missing, _retests, _communication)


async def _load_state(engine: AsyncEngine) -> State:
    async with engine.connect() as conn:
        rows = await store.finding_states(conn)
    return {(r.kind, r.subject): r.episode for r in rows}


async def _save(engine: AsyncEngine, changes: Sequence[Change], now: datetime) -> None:
    async with engine.begin() as conn:
        for c in changes:
            if c.episode is None:
                await store.delete_finding_state(conn, c.kind, c.subject)
                continue
            assert c.alert is not None, "a raised finding has its alert"
            well_id = c.alert.well_id
            # A well deleted since the check has nothing to record; the lock keeps one that
            # exists from being deleted before the commit.
            if await store.lock_well_key_share(conn, well_id):
                await store.upsert_finding_state(conn, c.kind, c.subject, c.episode, now, well_id)


async def run_findings(
    engine: AsyncEngine, cfg: FindingsConfig, publish: Publish, now: datetime | None = None
) -> FindingsReport:
    """One sweep: judge every finding, send the alerts, then record what is raised."""
    started = time.perf_counter()
    now = now or utcnow()
    report = FindingsReport()
    state = await _load_state(engine)
    changes: list[Change] = []
    for check in CHECKS:
        # Each check on its own: one that fails (logged) does not keep the others from
        # raising; it is judged again on the next sweep.
        try:
            async with engine.connect() as conn:
                changes.extend(await check(conn, cfg, state, now))
        except (OSError, DBAPIError):
            raise  # the database is away: the caller retries the sweep
        except Exception:
            log.exception("findings: %s failed", check.__name__)
    alerts = [c.alert for c in changes if c.alert is not None]
    if alerts:
        await publish(alerts)  # acked before the state says they were sent
    await _save(engine, changes, now)
    for c in changes:
        if c.alert is not None:
            (report.cleared if c.episode is None else report.raised).append(c.alert)
    report.seconds = time.perf_counter() - started
    return report
