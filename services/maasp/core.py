"""Judge one annulus' readings of a batch against its config and runtime state (no I/O).

The worker groups a batch by annulus and calls :func:`judge_annulus` once per annulus with
that annulus' readings in arrival order; it gets back the new runtime state (a JSON-able
dict for the changelog table) and the events to emit. All decisions are in event time:

- **Late readings** (shared.domain.ordering). A reading whose timestamp is not after the
  newest one already seen for its annulus (this batch included) is late: a historian
  replay, a duplicate, or a replay of the worker's own input after a restart. It is
  counted and otherwise ignored, so the level always follows the newest reading and no
  stale alert is raised.
- **Usable readings** are in order, not of bad quality and have a pressure. Only they
  move the utilisation level (shared.domain.utilisation, with its hysteresis) and feed the
  SAP detector (shared.domain.sap).
- **Level changes** emit an AnnulusState (reason ``level_change``) and alerts: rising
  past warning raises ``maasp_warning``, reaching exceeded raises ``maasp_exceeded`` (a
  jump from normal straight to exceeded raises both, so every raised level has its
  alert); a fall from warning or exceeded to a lower known level raises one
  ``maasp_cleared`` naming the level it fell from. A change to *unknown* (the config was
  deleted or lost its critical points) emits the state but no alert: nothing cleared.
- **Heartbeats.** At most one AnnulusState per batch, for the newest usable reading, and
  only when ``heartbeat_s`` of event time passed since the last state emitted.
- **SAP.** ``sap_detected`` and ``diagnostic_test_due`` once per episode (the detector
  itself finds each episode once; its state lives in the runtime state). Never for an
  annulus whose pressure is imposed by the operator (gas lift), nor before its config.

Each rule is applied by its one implementation in shared.domain (a vectorised form, where
speed needs one, lives beside its reference there and is property-tested equal to it).
:func:`judge_annulus` judges one annulus; :func:`judge_batch` is its fast path for a whole
batch: what is the same arithmetic for every annulus it does for all at once, and hands
each annulus it cannot finish itself to :func:`judge_annulus` together with what it
already worked out (the levels and the SAP step), so each reading enters each rule once.

Every event id is derived from the facts that make it unique (annulus, kind, event time of
the reading or episode), so re-judging the same readings after a crash re-emits the same
ids rather than new alerts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from services.maasp.config import ConfigView
from shared.contracts import events as ev
from shared.contracts.enums import AlertKind, Severity, UtilisationLevel
from shared.contracts.readings import BAD, NO_WELL
from shared.contracts.topics import ALERTS, ANNULUS_STATE, entity_key
from shared.domain.ordering import all_in_order, in_order, in_order_array
from shared.domain.sap import DEFAULT_SAP_PARAMS, SapParams, SapState, sap_step, sap_step_many
from shared.domain.sap import STATE_VERSION as SAP_STATE_VERSION
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    EXCEEDED,
    LEVEL_BY_CODE,
    LEVEL_CODES,
    NORMAL,
    UNKNOWN,
    WARNING,
    Thresholds,
    levels_for_segments,
    levels_for_series,
    next_level,
    utilisation,
    utilisation_array,
)

STATE_VERSION = 1
#: Groups up to this size are judged with scalar Python rather than numpy (measured: at
#: 20 readings an annulus the scalar fold is ~25 % cheaper than numpy's per-call costs).
SMALL_GROUP = 32
_RAISE = (
    (WARNING, AlertKind.maasp_warning, Severity.warning),
    (EXCEEDED, AlertKind.maasp_exceeded, Severity.critical),
)


@dataclass(frozen=True, slots=True)
class JudgeParams:
    heartbeat_s: float = 5.0
    sap: SapParams = DEFAULT_SAP_PARAMS


@dataclass(slots=True)
class Emit:
    """One event to publish: ``label`` is its alert kind or state reason (for metrics)."""

    topic: str
    key: bytes
    value: bytes
    label: str
    ts: float


@dataclass(slots=True)
class AnnulusOutcome:
    state: dict[str, Any]
    emits: list[Emit] = field(default_factory=list)
    late: int = 0
    unconfigured: int = 0
    level_counts: list[int] | None = None  # usable readings by level code


def _us(ts: float) -> int:
    """Event time as integer microseconds: a stable part of a derived event id."""
    return round(ts * 1_000_000)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _fmt_util(u: float | None) -> str:
    if u is None or math.isnan(u):
        return "?"
    return "infinitely over" if math.isinf(u) else f"{u * 100:.0f} %"


def new_state() -> dict[str, Any]:
    return {
        "v": STATE_VERSION,
        "newest_ts": None,
        "level": UtilisationLevel.unknown.value,
        "level_ts": None,
        "reading_ts": None,
        "pressure_bar": None,
        "utilisation": None,
        "hb_ts": None,
        "well_id": None,
        "cfg_version": None,
        "sap": None,
        "sap_detected": False,
        "diagnostic_test_due": False,
        "sap_episode": None,
        "diag_episode": None,
    }


def sap_state_of(value: SapState | dict[str, Any] | None) -> SapState:
    """The SAP detector state held in a runtime state: the object itself while the worker
    runs, its JSON form (orjson writes the dataclass fields) after a recovery."""
    if value is None:
        return SapState()
    if isinstance(value, SapState):
        return value
    return SapState.from_dict({"version": SAP_STATE_VERSION, **value})


def encode_state(state: dict[str, Any]) -> bytes:
    """A runtime state as the changelog's JSON (the SAP state as its dataclass fields)."""
    return orjson.dumps(state)


def _state_emit(
    annulus_id: int,
    well: int | None,
    name: str | None,
    maasp_bar: float | None,
    key: bytes,
    st: dict[str, Any],
    t: float,
    p: float | None,
    u: float | None,
    code: int,
    reason: str,
) -> Emit:
    """An AnnulusState for the runtime state ``st`` (whose ``hb_ts`` it advances)."""
    event = ev.AnnulusState(
        event_id=ev.derived_id(annulus_id, "annulus_state", reason, _us(t)),
        well_id=well,  # type: ignore[arg-type]
        annulus_id=annulus_id,
        annulus_name=name,
        ts=_dt(t),
        pressure_bar=p,
        maasp_bar=maasp_bar,
        utilisation=None if u is None or not math.isfinite(u) else u,
        level=LEVEL_BY_CODE[code],
        sap_detected=st["sap_detected"],
        diagnostic_test_due=st["diagnostic_test_due"],
        reason=reason,  # type: ignore[arg-type]
    )
    st["hb_ts"] = t if st["hb_ts"] is None else max(st["hb_ts"], t)
    return Emit(ANNULUS_STATE.name, key, event.encode(), reason, t)


@dataclass(slots=True)
class Levels:
    """What the level rule made of one annulus' usable readings of a batch (in order, not
    bad, with a pressure): their times and pressures, and the utilisation (NaN: unknown)
    and level code after each."""

    ts: list[float]
    pressure: list[float]
    utils: list[float]
    codes: list[int]


@dataclass(slots=True)
class _Emitter:
    """Builds one annulus' events of a batch (nothing while its well is not known)."""

    annulus_id: int
    well: int | None
    name: str | None
    maasp_bar: float | None
    limiting: str | None
    st: dict[str, Any]
    key: bytes | None = None
    emits: list[Emit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = None if self.well is None else entity_key(self.well)

    def state(self, t: float, p: float | None, u: float | None, code: int, reason: str) -> None:
        if self.key is None:
            return  # no well known yet (no config, and the readings do not say)
        self.emits.append(
            _state_emit(
                self.annulus_id,
                self.well,
                self.name,
                self.maasp_bar,
                self.key,
                self.st,
                t,
                p,
                u,
                code,
                reason,
            )
        )

    def alert(
        self,
        kind: AlertKind,
        severity: Severity,
        t: float,
        episode: float,
        message: str,
        p: float | None,
        u: float | None,
        code: int | None,
        details: dict[str, Any],
    ) -> None:
        if self.key is None:
            return
        event = ev.Alert(
            event_id=ev.derived_id(self.annulus_id, kind.value, _us(episode)),
            kind=kind,
            severity=severity,
            well_id=self.well,  # type: ignore[arg-type]
            annulus_id=self.annulus_id,
            ts=_dt(t),
            message=message,
            pressure_bar=p,
            maasp_bar=self.maasp_bar,
            utilisation=None if u is None or not math.isfinite(u) else u,
            limiting_point=self.limiting,
            level=None if code is None else LEVEL_BY_CODE[code],
            details={
                "annulus_name": self.name,
                "config_version": self.st["cfg_version"],
                **details,
            },
        )
        self.emits.append(Emit(ALERTS.name, self.key, event.encode(), kind.value, t))


def judge_annulus(
    annulus_id: int,
    ts: np.ndarray,
    pressure: np.ndarray,
    temperature: np.ndarray,
    quality: np.ndarray,
    well_id: np.ndarray,
    state: dict[str, Any] | None,
    cfg: ConfigView | None,
    params: JudgeParams,
    sap: tuple[SapState, list[Any]] | None = None,
    levels: Levels | None = None,
) -> AnnulusOutcome:
    """Fold one annulus' readings (arrival order) into its state; see the module docstring.

    ``state`` is not mutated: the outcome holds a new one (its ``sap`` entry a SapState;
    :func:`encode_state` writes it as JSON). Handed over by :func:`judge_batch` when every
    one of these readings is in order and the annulus configured, used instead of working
    them out again: ``sap``, the SAP detector stepped over them from this state; ``levels``,
    their levels.
    """
    st = dict(state) if state else new_state()
    n = int(ts.shape[0])
    out = AnnulusOutcome(state=st)
    configured = cfg is not None and not cfg.deleted
    if not configured:
        out.unconfigured = n
    if levels is None:
        start = -math.inf if st["newest_ts"] is None else float(st["newest_ts"])
        io, newest, t_use, p_use = _in_order_usable(ts, pressure, quality, start)
    else:
        io, newest, t_use, p_use = range(n), float(ts[-1]), levels.ts, levels.pressure
    out.late = n - len(io)
    if not io:
        return out
    st["newest_ts"] = newest

    if configured:
        assert cfg is not None
        st["well_id"] = cfg.well_id
        st["cfg_version"] = cfg.version
    elif st["well_id"] is None:
        known = well_id[well_id != NO_WELL]
        if known.size:
            st["well_id"] = int(known[-1])
    em = _Emitter(
        annulus_id,
        st["well_id"],
        cfg.name if cfg is not None else None,
        cfg.maasp_bar if configured and cfg is not None else None,
        cfg.limiting_point_name if configured and cfg is not None else None,
        st,
    )
    if t_use:
        if levels is None:
            thresholds = cfg.thresholds if cfg is not None else DEFAULT_THRESHOLDS
            prev = LEVEL_CODES[UtilisationLevel(st["level"])]
            levels = _levels(t_use, p_use, prev, em.maasp_bar, thresholds)
        _level_events(em, out, levels)
    if configured and cfg is not None and not cfg.imposed_pressure:
        before = sap_state_of(st["sap"])
        if sap is None:
            sel = None if len(io) == n else np.asarray(io, dtype=np.intp)
            sap = _sap_step(before, ts, pressure, temperature, quality, sel, params)
        else:
            assert len(io) == n, "a SAP step handed over is of readings all in order"
        _sap_events(em, before, sap, params)
    elif configured and cfg is not None:
        st["sap_detected"] = st["diagnostic_test_due"] = False
    if t_use and _heartbeat_due(st, params):
        em.state(*_heartbeat_args(st))
    em.emits.sort(key=lambda e: e.ts)  # stable: a level's alerts stay after its state
    out.emits = em.emits
    return out


def _in_order_usable(
    ts: np.ndarray, pressure: np.ndarray, quality: np.ndarray, start: float
) -> tuple[Sequence[int], float, list[float], list[float]]:
    """The readings in order (the late rule), the newest time after them, and the times
    and pressures of the usable ones (in order, not bad, with a pressure). A handful of
    readings (the usual case: many annuli share a batch) is taken with plain Python, which
    beats numpy's per-call overhead on tiny arrays."""
    if ts.shape[0] <= SMALL_GROUP:
        ts_l, p_l, q_l = ts.tolist(), pressure.tolist(), quality.tolist()
        io, newest = in_order(ts_l, start)
        usable = [i for i in io if q_l[i] != BAD and p_l[i] == p_l[i]]  # NaN != NaN
        return io, newest, [ts_l[i] for i in usable], [p_l[i] for i in usable]
    mask, newest = in_order_array(ts, start)
    u_arr = np.flatnonzero(mask & (quality != BAD) & ~np.isnan(pressure))
    return np.flatnonzero(mask).tolist(), newest, ts[u_arr].tolist(), pressure[u_arr].tolist()


def _levels(
    t_use: list[float],
    p_use: list[float],
    prev_code: int,
    maasp_bar: float | None,
    thresholds: Thresholds,
) -> Levels:
    """The levels after each usable reading: the rule (next_level) folded for a handful
    of readings, its vectorised form (levels_for_series) for more."""
    if len(p_use) <= SMALL_GROUP:
        utils_l: list[float] = []
        codes_l: list[int] = []
        level = LEVEL_BY_CODE[prev_code]
        for p in p_use:
            u = utilisation(p, maasp_bar)
            level = next_level(level, u, thresholds)
            utils_l.append(math.nan if u is None else u)
            codes_l.append(LEVEL_CODES[level])
        return Levels(t_use, p_use, utils_l, codes_l)
    p_arr = np.asarray(p_use, dtype=np.float64)
    utils = (
        utilisation_array(p_arr, maasp_bar)
        if maasp_bar is not None
        else np.full(p_arr.shape, np.nan)
    )
    codes = levels_for_series(LEVEL_BY_CODE[prev_code], utils, thresholds)
    return Levels(t_use, p_use, utils.tolist(), codes.tolist())


def _level_events(em: _Emitter, out: AnnulusOutcome, lv: Levels) -> None:
    """The state and alerts of each level change, and the state after the last reading."""
    st = em.st
    counts = [0, 0, 0, 0]
    for c in lv.codes:
        counts[c] += 1
    out.level_counts = counts
    well, maasp_bar, limiting = em.well, em.maasp_bar, em.limiting
    label = f"annulus {em.name or em.annulus_id}" + (f" of well {well}" if well is not None else "")
    old = LEVEL_CODES[UtilisationLevel(st["level"])]
    for j, new in enumerate(lv.codes):
        if new == old:
            continue
        t, p, u = lv.ts[j], lv.pressure[j], lv.utils[j]
        st["level_ts"] = t
        em.state(t, p, u, new, "level_change")
        what = (
            f"{label}: {p:.1f} bar is {_fmt_util(u)} of MAASP "
            f"{maasp_bar if maasp_bar is None else round(maasp_bar, 1)} bar"
            f" (limiting point {limiting})"
        )
        if new > old:
            for lvl, kind, severity in _RAISE:
                if old < lvl <= new:
                    em.alert(
                        kind,
                        severity,
                        t,
                        t,
                        f"{what}: {LEVEL_BY_CODE[lvl].value}",
                        p,
                        u,
                        lvl,
                        {"from_level": LEVEL_BY_CODE[old].value},
                    )
        elif old >= WARNING and new >= NORMAL:
            em.alert(
                AlertKind.maasp_cleared,
                Severity.info,
                t,
                t,
                f"{what}: {LEVEL_BY_CODE[old].value} cleared, now {LEVEL_BY_CODE[new].value}",
                p,
                u,
                new,
                {"from_level": LEVEL_BY_CODE[old].value, "to_level": LEVEL_BY_CODE[new].value},
            )
        old = new
    st["level"] = LEVEL_BY_CODE[lv.codes[-1]].value
    st["reading_ts"] = lv.ts[-1]
    st["pressure_bar"] = lv.pressure[-1]
    st["utilisation"] = lv.utils[-1] if math.isfinite(lv.utils[-1]) else None


def _sap_step(
    before: SapState,
    ts: np.ndarray,
    pressure: np.ndarray,
    temperature: np.ndarray,
    quality: np.ndarray,
    sel: np.ndarray | None,
    params: JudgeParams,
) -> tuple[SapState, list[Any]]:
    """The SAP detector stepped from ``before`` over the readings (``sel``: the in-order
    ones, None when all are)."""
    if sel is not None:
        ts, pressure, temperature, quality = ts[sel], pressure[sel], temperature[sel], quality[sel]
    return sap_step(before, ts, pressure, temperature, quality != BAD, params.sap)


def _sap_events(
    em: _Emitter, before: SapState, sap: tuple[SapState, list[Any]], params: JudgeParams
) -> None:
    """The state's SAP flags after a step from ``before``, and the alert and state of each
    new finding."""
    st = em.st
    new_sap, findings = sap
    if any(f.kind == "sap_detected" for f in findings):
        st["sap_detected"] = True
    elif new_sap.phase == "bled" and before.phase != "bled":
        st["sap_detected"] = False  # a new bleed-down: judged afresh when it rebuilds
    st["diagnostic_test_due"] = new_sap.diag_raised
    name, well, maasp_bar = em.name, em.well, em.maasp_bar
    for f in findings:
        marker = "sap_episode" if f.kind == "sap_detected" else "diag_episode"
        if st[marker] == f.episode_start:
            continue
        st[marker] = f.episode_start
        kind = AlertKind(f.kind)
        if kind is AlertKind.sap_detected:
            msg = (
                f"annulus {name} of well {well}: sustained annulus pressure: bled from "
                f"{f.pre_bleed_bar:.1f} to {f.bleed_low_bar:.1f} bar, rebuilt to "
                f"{f.buildup_bar:.1f} bar"
            )
        else:
            msg = (
                f"annulus {name} of well {well}: pressure above "
                f"{params.sap.diagnostic_threshold_bar:.1f} bar (100 psig) for "
                f"{f.details.get('sustained_s', 0) / 3600:.1f} h: diagnostic test due"
            )
        u_f = utilisation_array(
            np.array([f.pressure_bar]), np.nan if maasp_bar is None else maasp_bar
        )
        em.alert(
            kind,
            Severity.warning,
            f.ts,
            f.episode_start,
            msg,
            f.pressure_bar,
            float(u_f[0]),
            None,
            {"episode_start": _dt(f.episode_start).isoformat(), **f.details},
        )
        em.state(
            f.ts,
            f.pressure_bar,
            float(u_f[0]),
            LEVEL_CODES[UtilisationLevel(st["level"])],
            "sap",
        )
    st["sap"] = new_sap


def _heartbeat_due(st: dict[str, Any], params: JudgeParams) -> bool:
    """Whether the newest usable reading gets a state: ``heartbeat_s`` of event time
    passed since the last state emitted."""
    t_last = st["reading_ts"]
    if t_last is None:
        return False
    hb = st["hb_ts"]
    return hb is None or t_last - hb >= params.heartbeat_s


def _heartbeat_args(st: dict[str, Any]) -> tuple[float, float | None, float | None, int, str]:
    """The heartbeat state's time, pressure, utilisation, level code and reason."""
    level = LEVEL_CODES[UtilisationLevel(st["level"])]
    return st["reading_ts"], st["pressure_bar"], st["utilisation"], level, "heartbeat"


def judge_batch(
    annulus_ids: list[int],
    starts: np.ndarray,
    ends: np.ndarray,
    ts: np.ndarray,
    pressure: np.ndarray,
    temperature: np.ndarray,
    quality: np.ndarray,
    well_id: np.ndarray,
    states: list[dict[str, Any] | None],
    cfgs: list[ConfigView | None],
    params: JudgeParams,
) -> list[AnnulusOutcome]:
    """:func:`judge_annulus` for every annulus of a batch at once: the same outcomes.

    Annulus ``g``'s readings are ``[starts[g], ends[g])`` of the arrays (arrival order).
    For the configured annuli whose readings are all in order (shared.domain.ordering), what
    is the same arithmetic for every reading is done for the whole batch with numpy:
    usability, utilisation, the hysteresis levels (shared.domain.utilisation's
    levels_for_segments) and the SAP steps (shared.domain.sap.sap_step_many). An annulus
    that then changes no level and finds nothing (the usual case) only needs its new state
    and, when due, a heartbeat. Every other annulus (a level change, a SAP or diagnostic
    finding, late readings, no config) is judged by :func:`judge_annulus`, handed the
    levels and the SAP step worked out here when its readings are all in order.
    """
    g_n = len(annulus_ids)
    starts = np.asarray(starts, dtype=np.intp)
    ends = np.asarray(ends, dtype=np.intp)
    lens = ends - starts
    configured_g, maasp_g, th_g, newest_g, prev_g = _batch_inputs(cfgs, states)
    in_order_g = configured_g & (lens > 0) & all_in_order(ts, starts, ends, newest_g)
    lv = _BatchLevels.of(in_order_g, lens, pressure, quality, maasp_g, th_g, prev_g)
    fine = in_order_g & ~lv.changed
    sap_out, sap_in = _batch_sap(
        in_order_g, cfgs, states, starts, ends, ts, pressure, temperature, quality, params
    )
    for g, res in sap_out.items():
        if res[1]:
            fine[g] = False  # a finding: its alerts are judge_annulus' business

    # Per annulus, only what is left: the state and a heartbeat when due.
    last_read = ts[np.maximum(ends - 1, 0)].tolist() if ts.shape[0] else [math.nan] * g_n
    u_t, u_p, u_u = lv.last_usable(ts, pressure, g_n)
    ucnt_l = lv.ucnt.tolist()
    prev_l = prev_g.tolist()
    fine_l = fine.tolist()
    in_order_l = in_order_g.tolist()
    outcomes: list[AnnulusOutcome] = []
    for g in range(g_n):
        if not fine_l[g]:
            s, e = int(starts[g]), int(ends[g])
            outcomes.append(
                judge_annulus(
                    annulus_ids[g],
                    ts[s:e],
                    pressure[s:e],
                    temperature[s:e],
                    quality[s:e],
                    well_id[s:e],
                    states[g],
                    cfgs[g],
                    params,
                    sap_out.get(g),
                    lv.of_annulus(g, ts, pressure) if in_order_l[g] else None,
                )
            )
            continue
        cfg = cfgs[g]
        assert cfg is not None
        st = dict(states[g]) if states[g] else new_state()
        out = AnnulusOutcome(state=st)
        st["newest_ts"] = last_read[g]
        st["well_id"] = cfg.well_id
        st["cfg_version"] = cfg.version
        n_u = ucnt_l[g]
        if n_u:
            counts = [0, 0, 0, 0]
            counts[prev_l[g]] = n_u
            out.level_counts = counts
            st["level"] = LEVEL_BY_CODE[prev_l[g]].value
            st["reading_ts"] = u_t[g]
            st["pressure_bar"] = u_p[g]
            u_last = u_u[g]
            st["utilisation"] = u_last if math.isfinite(u_last) else None
        if not cfg.imposed_pressure:
            new_sap = sap_out[g][0]
            if new_sap.phase == "bled" and sap_in[g].phase != "bled":
                st["sap_detected"] = False
            st["diagnostic_test_due"] = new_sap.diag_raised
            st["sap"] = new_sap
        else:
            st["sap_detected"] = st["diagnostic_test_due"] = False
        if n_u and _heartbeat_due(st, params):
            key = entity_key(cfg.well_id)
            out.emits = [
                _state_emit(
                    annulus_ids[g],
                    cfg.well_id,
                    cfg.name,
                    cfg.maasp_bar,
                    key,
                    st,
                    *_heartbeat_args(st),
                )
            ]
        outcomes.append(out)
    return outcomes


def _batch_inputs(
    cfgs: list[ConfigView | None], states: list[dict[str, Any] | None]
) -> tuple[
    np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, np.ndarray
]:
    """Per annulus: configured, MAASP (NaN: none), thresholds (warning, exceeded, clear
    band), the newest timestamp seen and the level code before the batch."""
    rows = []
    for cfg, st in zip(cfgs, states, strict=True):
        configured = cfg is not None and not cfg.deleted
        th = cfg.thresholds if cfg is not None else DEFAULT_THRESHOLDS
        m = cfg.maasp_bar if configured and cfg is not None else None
        newest = st["newest_ts"] if st and st["newest_ts"] is not None else -math.inf
        level = LEVEL_CODES[UtilisationLevel(st["level"])] if st else UNKNOWN
        maasp_or_nan = math.nan if m is None else m
        rows.append(
            (configured, maasp_or_nan, th.warning, th.exceeded, th.clear_band, newest, level)
        )
    configured_g, maasp_g, warn_g, exc_g, band_g, newest_g, prev_g = (
        np.array(c) for c in zip(*rows, strict=True)
    )
    return configured_g.astype(bool), maasp_g, (warn_g, exc_g, band_g), newest_g, prev_g


@dataclass(slots=True)
class _BatchLevels:
    """The levels of the usable readings of the annuli judged in bulk, every annulus at once.

    ``u_idx``: the positions of those readings in the batch (annulus after annulus);
    ``ustart``/``ucnt``: each annulus' run of them; ``changed``: whether its level changes.
    """

    u_idx: np.ndarray
    utils: np.ndarray
    codes: np.ndarray
    ustart: np.ndarray
    ucnt: np.ndarray
    changed: np.ndarray

    @classmethod
    def of(
        cls,
        judged: np.ndarray,
        lens: np.ndarray,
        pressure: np.ndarray,
        quality: np.ndarray,
        maasp_g: np.ndarray,
        th_g: tuple[np.ndarray, np.ndarray, np.ndarray],
        prev_g: np.ndarray,
    ) -> _BatchLevels:
        g_n = lens.shape[0]
        gid = np.repeat(np.arange(g_n), lens)
        u_idx = np.flatnonzero(judged[gid] & (quality != BAD) & ~np.isnan(pressure))
        ug = gid[u_idx]
        utils = utilisation_array(pressure[u_idx], maasp_g[ug])
        ucnt = np.bincount(ug, minlength=g_n)
        ustart = np.cumsum(ucnt) - ucnt
        has_u = ucnt > 0
        firsts = ustart[has_u]
        prev = prev_g.astype(np.int8)
        warn_g, exc_g, band_g = th_g
        codes = levels_for_segments(utils, firsts, prev[has_u], warn_g[ug], exc_g[ug], band_g[ug])
        changed = np.zeros(g_n, dtype=bool)
        if codes.shape[0]:
            before = np.empty_like(codes)
            before[1:] = codes[:-1]
            before[firsts] = prev[has_u]
            changed = np.bincount(ug[codes != before], minlength=g_n) > 0
        return cls(u_idx, utils, codes, ustart, ucnt, changed)

    def last_usable(
        self, ts: np.ndarray, pressure: np.ndarray, g_n: int
    ) -> tuple[list[float], list[float], list[float]]:
        """Per annulus: time, pressure and utilisation of its last usable reading."""
        if not self.u_idx.shape[0]:
            nan = [math.nan] * g_n
            return nan, nan, nan
        lu = np.maximum(self.ustart + self.ucnt - 1, 0)
        at = self.u_idx[lu]
        return ts[at].tolist(), pressure[at].tolist(), self.utils[lu].tolist()

    def of_annulus(self, g: int, ts: np.ndarray, pressure: np.ndarray) -> Levels:
        """Annulus ``g``'s share, as :func:`judge_annulus` takes it."""
        s = int(self.ustart[g])
        e = s + int(self.ucnt[g])
        at = self.u_idx[s:e]
        return Levels(
            ts[at].tolist(),
            pressure[at].tolist(),
            self.utils[s:e].tolist(),
            self.codes[s:e].tolist(),
        )


def _batch_sap(
    in_order_g: np.ndarray,
    cfgs: list[ConfigView | None],
    states: list[dict[str, Any] | None],
    starts: np.ndarray,
    ends: np.ndarray,
    ts: np.ndarray,
    pressure: np.ndarray,
    temperature: np.ndarray,
    quality: np.ndarray,
    params: JudgeParams,
) -> tuple[dict[int, tuple[SapState, list[Any]]], dict[int, SapState]]:
    """The SAP steps of the configured annuli in order that are not operator-pressured, a
    level change or not: what judge_annulus would step one annulus at a time, stepped
    together (and handed to it when it judges the annulus for a level change or a
    finding). Returns the step and the state before it, by annulus."""
    sap_g = [
        i
        for i in np.flatnonzero(in_order_g).tolist()
        if not cfgs[i].imposed_pressure  # type: ignore[union-attr]
    ]
    if not sap_g:
        return {}, {}
    lens = ends - starts
    sel = np.asarray(sap_g, dtype=np.intp)
    sap_states = [sap_state_of(states[i]["sap"] if states[i] else None) for i in sap_g]
    sub_lens = lens[sel]
    sub_idx = np.concatenate([np.arange(starts[i], ends[i]) for i in sap_g])
    sub_ends = np.cumsum(sub_lens)
    results = sap_step_many(
        sap_states,
        sub_ends - sub_lens,
        sub_ends,
        ts[sub_idx],
        pressure[sub_idx],
        temperature[sub_idx],
        quality[sub_idx] != BAD,
        params.sap,
    )
    return dict(zip(sap_g, results, strict=True)), dict(zip(sap_g, sap_states, strict=True))
