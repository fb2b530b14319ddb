"""The integrity worker's per-well state and the pure fold of each input event into it.

No I/O: the worker keeps one state dict per well in its changelog-backed faust table, so
the dict holds only JSON values (numbers, strings, None, lists, dicts; datetimes as ISO
8601 strings). Every function here returns a NEW dict and leaves its input untouched: the
worker only stores the new state after the snapshot it implies is safely written, so a
crash in between replays the event against the old state.

State layout::

    {
      "well_id": 17,
      "partition": 3,              # partition of the table (and of every wims.* topic)
      "config_version": 4,         # None until a WellConfig arrived
      "name": "W-17", "consequence": 3,
      "commissioning": False,      # an engineer is commissioning it: no colour alerts
      "structure": "ab12...",      # hash of the annuli and elements the config lists
      "configured_at": "...",      # when that structure last changed (settling time)
      "elements": {"5": {"name", "element_type", "envelope", "status", "status_ts",
                         "last_tested_at", "next_test_due"}},
      "annuli": {"1": {"name", "level", "utilisation", "sap_detected",
                       "diagnostic_test_due", "ts", "critical_points"}},
      "last": {"fingerprint", "status", "event_id"} or None,  # last snapshot emitted
      "alarm": {"announced", "pending", "pending_since", "wake_at"}  # shared.domain.alarms
    }

States written before a key existed lack it: readers use ``.get`` with the old meaning.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from shared.contracts.enums import (
    AlertKind,
    ElementStatus,
    IntegrityStatus,
    Severity,
    TestResult,
    UtilisationLevel,
)
from shared.contracts.events import (
    Alert,
    AnnulusState,
    BarrierTestRecorded,
    ElementStatusChanged,
    Event,
    IntegritySnapshot,
    WellConfig,
    derived_id,
)
from shared.domain.alarms import AlarmPolicy, ColourAlarm, Quiet, decide_alarm
from shared.domain.integrity import (
    AnnulusEvidence,
    ElementInput,
    IntegrityAssessment,
    WellInputs,
)

State = dict[str, Any]


class FoldError(ValueError):
    """An event that cannot be folded: names the field and the reason."""


def new_state(well_id: int, partition: int) -> State:
    return {
        "well_id": well_id,
        "partition": partition,
        "config_version": None,
        "name": None,
        "consequence": None,
        "commissioning": False,
        "structure": None,
        "configured_at": None,
        "elements": {},
        "annuli": {},
        "last": None,
    }


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _older(ts: datetime, stored: str | None) -> bool:
    """True when ``ts`` is strictly older than the stored time: a late or replayed fact.

    The four input topics have no common order, and historians replay late data, so the
    time the fact is about, not arrival order, decides which one is current.
    """
    previous = _dt(stored)
    return previous is not None and ts < previous


def event_well_id(event: Event) -> int:
    well_id = getattr(event, "well_id", None)
    if not isinstance(well_id, int):
        raise FoldError(f"well_id: missing on {type(event).__name__}")
    return well_id


def apply_event(state: State | None, event: Event, partition: int) -> State | None:
    """Fold one input event into a well's state; returns the new state.

    None means the well is gone (a deleted WellConfig). Events that carry nothing new (a
    stale config version, an older reading time, this service's own
    ``integrity_status_changed`` alerts) return an equal copy, so the caller's fingerprint
    check emits nothing for them. Raises FoldError for an event that breaks its contract.
    """
    well_id = event_well_id(event)
    if state is not None and state["well_id"] != well_id:
        raise FoldError(f"well_id: {well_id} does not match the state of well {state['well_id']}")
    out = copy.deepcopy(state) if state is not None else new_state(well_id, partition)
    out["partition"] = partition
    if isinstance(event, WellConfig):
        return _apply_well_config(out, event)
    if isinstance(event, ElementStatusChanged):
        return _apply_status_change(out, event)
    if isinstance(event, BarrierTestRecorded):
        return _apply_test(out, event)
    if isinstance(event, AnnulusState):
        return _apply_annulus_state(out, event)
    if isinstance(event, Alert):
        return _apply_alert(out, event)
    raise FoldError(f"event_type: {type(event).__name__} is not an integrity input")


def _apply_well_config(state: State, config: WellConfig) -> State | None:
    if config.deleted:
        return None
    stored = state["config_version"]
    # Equal versions are the same config seen again (a replay): re-applying it could undo
    # element status changes that arrived on the barrier-events topic in between.
    if stored is not None and config.version <= stored:
        return state
    state["config_version"] = config.version
    state["name"] = config.name
    state["consequence"] = config.consequence_level
    state["commissioning"] = config.commissioning
    structure = _structure(config)
    if structure != state.get("structure"):
        # The well's make-up changed (not a status or a test date): its colour may move
        # while the engineer is still at it, so the settling time starts again.
        state["structure"] = structure
        state["configured_at"] = _iso(config.updated_at)
    elements: dict[str, Any] = {}
    for e in config.elements:
        element = {
            "name": e.name,
            "element_type": e.element_type.value,
            "envelope": e.envelope_type.value,
            "status": e.status.value,
            "status_ts": _iso(config.updated_at),
            "last_tested_at": _iso(e.last_tested_at),
            "next_test_due": _iso(e.next_test_due),
            "cement_quality": e.cement_quality.value if e.cement_quality is not None else None,
            "cement_quality_override": e.cement_quality_override,
        }
        current = state["elements"].get(str(e.id))
        # A status change or test newer than this config (the topics are not ordered with
        # one another) is fresher news than the config's copy of it: keep it.
        if current is not None:
            if _older(config.updated_at, current["status_ts"]):
                element["status"] = current["status"]
                element["status_ts"] = current["status_ts"]
            tested = current["last_tested_at"]
            if tested is not None and (
                e.last_tested_at is None or _older(e.last_tested_at, tested)
            ):
                element["last_tested_at"] = tested
                element["next_test_due"] = current["next_test_due"] or element["next_test_due"]
        elements[str(e.id)] = element
    state["elements"] = elements
    # The config lists the well's annuli: evidence of a removed annulus goes with it, a new
    # annulus starts unknown until the MAASP worker reports on it.
    annuli: dict[str, Any] = {}
    for ref in config.annuli:
        current = state["annuli"].get(str(ref.id))
        annulus = {**current, "name": ref.name} if current is not None else _blank_annulus(ref.name)
        annulus["critical_points"] = ref.critical_points
        annuli[str(ref.id)] = annulus
    state["annuli"] = annuli
    return state


def _structure(config: WellConfig) -> str:
    """What the well is made of, as a short hash: its annuli (and how many critical points
    define each MAASP) and its barrier elements with their envelope and type. Statuses and
    test dates are operations, not configuration, and are left out."""
    parts = (
        sorted((a.id, a.critical_points) for a in config.annuli),
        sorted((e.id, e.envelope_type.value, e.element_type.value) for e in config.elements),
    )
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]


def _element(state: State, event: ElementStatusChanged | BarrierTestRecorded) -> dict[str, Any]:
    key = str(event.barrier_element_id)
    element = state["elements"].get(key)
    if element is None:
        # An element the config has not listed yet: the event says all we need to know,
        # and dropping it could hide a failed barrier.
        element = {
            "name": event.element_name,
            "element_type": event.element_type.value,
            "envelope": event.envelope_type.value,
            "status": ElementStatus.unknown.value,
            "status_ts": None,
            "last_tested_at": None,
            "next_test_due": None,
        }
        state["elements"][key] = element
    return element


def _apply_status_change(state: State, event: ElementStatusChanged) -> State:
    element = _element(state, event)
    if _older(event.ts, element["status_ts"]):
        return state
    element["status"] = event.new_status.value
    element["status_ts"] = _iso(event.ts)
    return state


def _apply_test(state: State, event: BarrierTestRecorded) -> State:
    element = _element(state, event)
    if event.result is TestResult.inconclusive:
        # It proves nothing either way: the element keeps its status and its test schedule
        # (the API leaves both; the tasks service opens a retest task).
        return state
    if _older(event.test_date, element["last_tested_at"]):
        return state
    element["last_tested_at"] = _iso(event.test_date)
    if event.next_test_due is not None:
        element["next_test_due"] = _iso(event.next_test_due)
    # A failed test is direct evidence the element does not hold. A pass does not restore
    # a failed or unknown element by itself: that takes an engineer's status change.
    if event.result is TestResult.failed and not _older(event.test_date, element["status_ts"]):
        element["status"] = ElementStatus.failed.value
        element["status_ts"] = _iso(event.test_date)
    return state


def _blank_annulus(name: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "level": UtilisationLevel.unknown.value,
        "utilisation": None,
        "sap_detected": False,
        "diagnostic_test_due": False,
        "ts": None,
    }


def _annulus(state: State, annulus_id: int, name: str | None) -> dict[str, Any]:
    key = str(annulus_id)
    annulus = state["annuli"].get(key)
    if annulus is None:
        annulus = _blank_annulus(name)
        state["annuli"][key] = annulus
    elif name:
        annulus["name"] = name
    return annulus


def _apply_annulus_state(state: State, event: AnnulusState) -> State:
    annulus = _annulus(state, event.annulus_id, event.annulus_name)
    if _older(event.ts, annulus["ts"]):
        return state
    annulus.update(
        level=event.level.value,
        utilisation=event.utilisation,
        sap_detected=event.sap_detected,
        diagnostic_test_due=event.diagnostic_test_due,
        ts=_iso(event.ts),
    )
    return state


_ANNULUS_ALERTS = {
    AlertKind.maasp_warning,
    AlertKind.maasp_exceeded,
    AlertKind.maasp_cleared,
    AlertKind.sap_detected,
    AlertKind.diagnostic_test_due,
}


def _apply_alert(state: State, alert: Alert) -> State:
    if alert.kind not in _ANNULUS_ALERTS:
        # integrity_status_changed is this service's own output: folding it back in would
        # make the colour feed on itself.
        return state
    if alert.annulus_id is None:
        raise FoldError(f"annulus_id: required on a {alert.kind.value} alert")
    annulus = _annulus(state, alert.annulus_id, None)
    if _older(alert.ts, annulus["ts"]):
        return state
    if alert.kind is AlertKind.maasp_exceeded:
        annulus["level"] = UtilisationLevel.exceeded.value
    elif alert.kind is AlertKind.maasp_warning:
        # One reading that crosses both bands raises maasp_warning and maasp_exceeded at the
        # same instant, and the exceedance may have been folded first (from this topic or
        # as the reading's AnnulusState): that instant's level is exceeded. Without this
        # the well flapped red -> amber -> red within a second.
        same_instant = annulus["ts"] == _iso(alert.ts)
        if not (same_instant and annulus["level"] == UtilisationLevel.exceeded.value):
            annulus["level"] = UtilisationLevel.warning.value
    elif alert.kind is AlertKind.maasp_cleared:
        # A clear says where the pressure settled (an exceedance may clear to warning);
        # without a level it settled below every band.
        level = alert.level or UtilisationLevel.normal
        if level is UtilisationLevel.exceeded:
            raise FoldError("level: a maasp_cleared alert cannot be at the exceeded level")
        annulus["level"] = level.value
    elif alert.kind is AlertKind.sap_detected:
        annulus["sap_detected"] = True
    elif alert.kind is AlertKind.diagnostic_test_due:
        annulus["diagnostic_test_due"] = True
    if alert.utilisation is not None:
        annulus["utilisation"] = alert.utilisation
    annulus["ts"] = _iso(alert.ts)
    return state


# --------------------------------------------------------------------------- evaluation


def well_inputs(state: State) -> WellInputs | None:
    """The domain inputs of a well; None until its WellConfig arrived (no consequence level
    and no envelope layout yet, so there is nothing sound to assess)."""
    if state.get("consequence") is None:
        return None
    elements = [
        ElementInput(
            element_id=int(eid),
            name=e["name"],
            element_type=e["element_type"],
            envelope=e["envelope"],
            status=e["status"],
            next_test_due=_dt(e["next_test_due"]),
            # .get: a state stored before cement quality existed lacks the keys.
            cement_quality=e.get("cement_quality"),
            cement_quality_override=e.get("cement_quality_override", False),
        )
        for eid, e in state["elements"].items()
    ]
    annuli = [
        AnnulusEvidence(
            annulus_id=int(aid),
            name=a["name"] or f"annulus {aid}",
            level=a["level"],
            utilisation=a["utilisation"],
            sap_detected=a["sap_detected"],
            diagnostic_test_due=a["diagnostic_test_due"],
            maasp_defined=None if a.get("critical_points") is None else a["critical_points"] > 0,
        )
        for aid, a in state["annuli"].items()
    ]
    return WellInputs(
        well_id=state["well_id"],
        consequence=state["consequence"],
        elements=elements,
        annuli=annuli,
    )


def fingerprint_key(assessment: IntegrityAssessment) -> str:
    """The assessment's fingerprint as a short stable string (it is stored in the table)."""
    return hashlib.sha256(orjson.dumps(assessment.fingerprint())).hexdigest()[:32]


_SEVERITY = {
    IntegrityStatus.green: Severity.info,
    IntegrityStatus.amber: Severity.warning,
    IntegrityStatus.red: Severity.critical,
}


@dataclass(frozen=True)
class Outcome:
    """What one evaluation produces: a snapshot when the assessment changed, a colour-change
    alert when the alarm announces one, and the state to store once both are written."""

    snapshot: IntegritySnapshot | None
    alert: Alert | None
    state: State


def alarm_of(state: State) -> ColourAlarm:
    """The well's colour alarm. A state from before alarm hygiene has none: the colour of
    its last snapshot was alerted then, so it is what the operators were last told."""
    stored = state.get("alarm")
    if stored is not None:
        return ColourAlarm.from_dict(stored)
    last = state.get("last")
    return ColourAlarm(announced=IntegrityStatus(last["status"]) if last else None)


def wake_at(state: State) -> datetime | None:
    """When the well's alarm wants another look without any new event (None: never)."""
    return _dt((state.get("alarm") or {}).get("wake_at"))


def decide(
    state: State,
    assessment: IntegrityAssessment,
    cause: str,
    now: datetime,
    policy: AlarmPolicy = AlarmPolicy(),
) -> Outcome | None:
    """A snapshot when the fingerprint changed, an alert when the alarm announces a colour
    (shared.domain.alarms), or None when neither the assessment nor the alarm changed.

    ``cause`` names what led to the evaluation (the input event id, or the periodic
    re-evaluation): the ids are derived from it and the fingerprint, so replaying the same
    cause against the same state gives the same ids and the database keeps one row.
    """
    fp = fingerprint_key(assessment)
    last = state.get("last")
    changed = last is None or last["fingerprint"] != fp
    alarm = alarm_of(state)
    quiet = Quiet(
        commissioning=bool(state.get("commissioning")),
        configured_at=_dt(state.get("configured_at")),
        assessment_gaps=assessment.assessment_gaps,
    )
    decision = decide_alarm(alarm, assessment.status, now, quiet, policy)
    stored_alarm = {**decision.alarm.to_dict(), "wake_at": _iso(decision.wake_at)}
    if not changed and stored_alarm == state.get("alarm"):
        return None  # (an announcement always changes the stored alarm)
    new = copy.deepcopy(state)
    new["alarm"] = stored_alarm
    snapshot = None
    if changed:
        snapshot = _snapshot(state, assessment, fp, cause, now)
        new["last"] = {
            "fingerprint": fp,
            "status": assessment.status.value,
            "event_id": str(snapshot.event_id),
        }
    alert = None
    if decision.announce is not None:
        snapshot_id = UUID(new["last"]["event_id"])
        held = alarm.pending_since if alarm.pending is decision.announce else None
        alert = status_changed_alert(state, assessment, alarm.announced, snapshot_id, now, held)
    return Outcome(snapshot=snapshot, alert=alert, state=new)


def _snapshot(
    state: State, assessment: IntegrityAssessment, fp: str, cause: str, now: datetime
) -> IntegritySnapshot:
    well_id = state["well_id"]
    last = state.get("last")
    return IntegritySnapshot(
        event_id=derived_id("integrity-snapshot", well_id, fp, cause),
        well_id=well_id,
        created_at=now,
        overall_status=assessment.status,
        previous_status=IntegrityStatus(last["status"]) if last is not None else None,
        primary_status=assessment.primary,
        secondary_status=assessment.secondary,
        probability=assessment.probability,
        consequence=assessment.consequence,
        risk_score=assessment.risk_score,
        risk_category=assessment.risk_category,
        highest_annulus_utilisation=assessment.highest_annulus_utilisation,
        sap_detected=assessment.sap_detected,
        findings=[f.to_dict() for f in assessment.findings],
        assessed=assessment.assessed,
        assessment_gaps=list(assessment.assessment_gaps),
    )


def status_changed_alert(
    state: State,
    assessment: IntegrityAssessment,
    previous: IntegrityStatus | None,
    snapshot_id: UUID,
    now: datetime,
    held_since: datetime | None = None,
) -> Alert:
    """The operations centre's alert: the well's colour moved from ``previous`` (the colour
    last announced) to the assessment's. Its id is derived from the snapshot that shows the
    colour and the announced change, so a replayed announcement is the same alert."""
    name = state.get("name") or f"well {state['well_id']}"
    drivers = [f.message for f in assessment.findings if f.severity != Severity.info][:3]
    # None: nothing was ever announced for the well (new, or quiet since it was set up).
    was = previous.value if previous is not None else "not announced"
    message = f"{name} integrity {was} -> {assessment.status.value}"
    if drivers:
        message += ": " + "; ".join(drivers)
    details: dict[str, Any] = {
        "snapshot_event_id": str(snapshot_id),
        "primary_status": assessment.primary.value,
        "secondary_status": assessment.secondary.value,
        "risk_score": assessment.risk_score,
        "risk_category": assessment.risk_category.value,
        "findings": [f.code for f in assessment.findings],
    }
    if held_since is not None:
        details["held_since"] = held_since.isoformat()
    return Alert(
        event_id=derived_id(
            "integrity-status-changed",
            state["well_id"],
            snapshot_id,
            previous.value if previous else None,
            assessment.status.value,
        ),
        kind=AlertKind.integrity_status_changed,
        severity=_SEVERITY[assessment.status],
        well_id=state["well_id"],
        ts=now,
        message=message,
        utilisation=assessment.highest_annulus_utilisation,
        level=assessment.max_level,
        status=assessment.status,
        previous_status=previous,
        details=details,
    )
