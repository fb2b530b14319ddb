"""Alarm hygiene for the well colour: when a colour change becomes an alert.

Pure domain code: no I/O, no clock (``now`` is passed in). docs/domain.md "Alarm hygiene"
gives the rationale: an operator can act on about one alarm per ten minutes (EEMUA 191,
ISA-18.2), and an alarm that chatters between two states is a defect, not information.

The snapshots always record the true colour. The alarm compares that colour with the one
the operations centre was last told (``announced``) and raises an alert only when

- the well is neither being commissioned, nor within the settling time after a change of
  its configuration, nor not yet fully assessed (quiet: ISA-18.2 "suppressed by design");
- and the new colour is red (at once), or another colour that has persisted for the
  persistence time (an on-delay): a change that reverts within it raises nothing.

When a quiet well becomes audible again its current colour is compared with the last one
announced, so a condition that arose while it was quiet is announced once (ISA-18.2: a
suppressed alarm whose condition is still active annunciates when it returns to service),
and an excursion that began and ended while it was quiet raises nothing. A well never
announced counts as announced green: a new well that starts green is not news.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.contracts.enums import IntegrityStatus


@dataclass(frozen=True)
class AlarmPolicy:
    """The two times of alarm hygiene (WIMS_COLOUR_PERSIST_S, WIMS_CONFIG_SETTLING_S)."""

    persist: timedelta = timedelta(seconds=120)
    """how long a colour other than red must hold before it is announced"""
    settling: timedelta = timedelta(seconds=300)
    """how long after a change of its configuration a well raises no colour alerts"""

    def __post_init__(self) -> None:
        for name in ("persist", "settling"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class ColourAlarm:
    """What the alarm of one well remembers between evaluations (stored with its state)."""

    announced: IntegrityStatus | None = None
    """the colour the operations centre was last told; None: never told anything"""
    pending: IntegrityStatus | None = None
    """a colour waiting out the persistence time"""
    pending_since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "announced": self.announced.value if self.announced else None,
            "pending": self.pending.value if self.pending else None,
            "pending_since": self.pending_since.isoformat() if self.pending_since else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColourAlarm:
        since = data.get("pending_since")
        return cls(
            announced=IntegrityStatus(data["announced"]) if data.get("announced") else None,
            pending=IntegrityStatus(data["pending"]) if data.get("pending") else None,
            pending_since=datetime.fromisoformat(since) if since else None,
        )


@dataclass(frozen=True)
class Quiet:
    """Why a well raises no colour alerts now; all False/None: it may alert."""

    commissioning: bool = False
    configured_at: datetime | None = None
    """when the well's configuration last changed"""
    assessment_gaps: tuple[str, ...] = ()
    """why the well is not fully assessed (empty: it is)"""


@dataclass(frozen=True)
class AlarmDecision:
    alarm: ColourAlarm
    """the alarm to remember"""
    announce: IntegrityStatus | None
    """the colour to alert now (None: no alert); the previous one is the old ``announced``"""
    quiet_reason: str | None
    """why a different colour was not announced (commissioning, settling, not_assessed)"""
    wake_at: datetime | None
    """when, without any new event, the decision may change (the end of the persistence or
    settling time): the worker looks at the well again then"""


def quiet_reason(quiet: Quiet, now: datetime, policy: AlarmPolicy) -> str | None:
    if quiet.commissioning:
        return "commissioning"
    if quiet.assessment_gaps:
        return "not_assessed"
    if quiet.configured_at is not None and now < quiet.configured_at + policy.settling:
        return "settling"
    return None


def decide_alarm(
    alarm: ColourAlarm,
    colour: IntegrityStatus,
    now: datetime,
    quiet: Quiet = Quiet(),
    policy: AlarmPolicy = AlarmPolicy(),
) -> AlarmDecision:
    """Whether the well's current ``colour`` is announced now, and what to remember.

    Deterministic in its arguments, so a replay after a crash (same stored alarm, same
    ``now`` recorded in it) decides the same.
    """
    reason = quiet_reason(quiet, now, policy)
    if reason is not None:
        # Nothing pends while quiet: the persistence starts over once the well may alert.
        wake = quiet.configured_at + policy.settling if reason == "settling" else None
        return AlarmDecision(ColourAlarm(alarm.announced), None, reason, wake)
    baseline = alarm.announced or IntegrityStatus.green
    if colour == baseline:
        # Back to what the operators know before the persistence ran out (or a new well
        # that is green): nothing to say, and green is now what they know.
        return AlarmDecision(ColourAlarm(baseline), None, None, None)
    if colour is IntegrityStatus.red or policy.persist <= timedelta(0):
        return AlarmDecision(ColourAlarm(colour), colour, None, None)
    if alarm.pending != colour or alarm.pending_since is None:
        pending = replace(alarm, pending=colour, pending_since=now)
        return AlarmDecision(pending, None, None, now + policy.persist)
    due = alarm.pending_since + policy.persist
    if now >= due:
        return AlarmDecision(ColourAlarm(colour), colour, None, None)
    return AlarmDecision(alarm, None, None, due)
