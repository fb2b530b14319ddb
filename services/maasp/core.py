"""Judge one annulus' readings of a batch against its config and runtime state (no I/O).

The worker groups a batch by annulus and calls :func:`judge_annulus` once per annulus with
that annulus' readings in arrival order; it gets back the new runtime state (a JSON-able
dict for the changelog table) and the events to emit. All decisions are in event time:

- **Late readings.** A reading whose timestamp is not after the newest one already seen
  for its annulus (this batch included) is late: a historian replay, a duplicate, or a
  replay of the worker's own input after a restart. It is counted and otherwise ignored,
  so the level always follows the newest reading and no stale alert is raised.
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

Every event id is derived from the facts that make it unique (annulus, kind, event time of
the reading or episode), so re-judging the same readings after a crash re-emits the same
ids rather than new alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from services.maasp.config import ConfigView
from shared import events as ev
from shared.contracts.readings import BAD, NO_WELL
from shared.domain.sap import DEFAULT_SAP_PARAMS, SapParams, SapState, sap_step, sap_step_many
from shared.domain.sap import STATE_VERSION as SAP_STATE_VERSION
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_BY_CODE,
    LEVEL_CODES,
    levels_for_series,
    next_level,
    utilisation,
    utilisation_array,
)
from shared.enums import AlertKind, Severity, UtilisationLevel
from shared.topics import ALERTS, ANNULUS_STATE, entity_key

STATE_VERSION = 1
#: Groups up to this size are judged with scalar Python rather than numpy (measured: at
#: 20 readings an annulus the scalar fold is ~25 % cheaper than numpy's per-call costs).
SMALL_GROUP = 32
UNKNOWN = LEVEL_CODES[UtilisationLevel.unknown]
NORMAL = LEVEL_CODES[UtilisationLevel.normal]
WARNING = LEVEL_CODES[UtilisationLevel.warning]
EXCEEDED = LEVEL_CODES[UtilisationLevel.exceeded]
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
) -> AnnulusOutcome:
    """Fold one annulus' readings (arrival order) into its state; see the module docstring.

    ``state`` is not mutated: the outcome holds a new one (its ``sap`` entry a SapState;
    :func:`encode_state` writes it as JSON). ``sap``: the SAP detector already stepped over
    these readings from this state (by :func:`judge_batch`, when every one is in order),
    used instead of stepping it again.
    """
    st = dict(state) if state else new_state()
    n = int(ts.shape[0])
    out = AnnulusOutcome(state=st)
    configured = cfg is not None and not cfg.deleted
    if not configured:
        out.unconfigured = n

    # Late: not after the newest timestamp seen before it (earlier in the batch included).
    # A handful of readings (the usual case: many annuli share a batch) is judged with
    # plain Python, which beats numpy's per-call overhead on tiny arrays.
    start = -math.inf if st["newest_ts"] is None else float(st["newest_ts"])
    small = n <= SMALL_GROUP
    if small:
        ts_l, p_l, q_l = ts.tolist(), pressure.tolist(), quality.tolist()
        io: list[int] = []
        newest = start
        for i, t in enumerate(ts_l):
            if t > newest:
                io.append(i)
                newest = t
        # Usable: in order, not bad, with a pressure (NaN != NaN).
        u_idx = [i for i in io if q_l[i] != BAD and p_l[i] == p_l[i]]
        t_use = [ts_l[i] for i in u_idx]
        p_use = [p_l[i] for i in u_idx]
    else:
        running = np.maximum.accumulate(ts)
        prior = np.empty(n, dtype=np.float64)
        prior[0] = start
        np.maximum(running[:-1], start, out=prior[1:])
        inorder = ts > prior
        io = np.flatnonzero(inorder).tolist()
        newest = max(start, float(running[-1]))
        u_arr = np.flatnonzero(inorder & (quality != BAD) & ~np.isnan(pressure))
        u_idx = u_arr.tolist()
        t_use = ts[u_arr].tolist()
        p_use = pressure[u_arr].tolist()
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
    well: int | None = st["well_id"]
    name = cfg.name if cfg is not None else None
    limiting = cfg.limiting_point_name if configured and cfg is not None else None
    maasp_bar = cfg.maasp_bar if configured and cfg is not None else None
    key = None if well is None else entity_key(well)
    emits: list[Emit] = []

    def state_event(t: float, p: float | None, u: float | None, code: int, reason: str) -> None:
        if key is None:
            return  # no well known yet (no config, and the readings do not say)
        emits.append(_state_emit(annulus_id, well, name, maasp_bar, key, st, t, p, u, code, reason))

    def alert(
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
        if key is None:
            return
        event = ev.Alert(
            event_id=ev.derived_id(annulus_id, kind.value, _us(episode)),
            kind=kind,
            severity=severity,
            well_id=well,  # type: ignore[arg-type]
            annulus_id=annulus_id,
            ts=_dt(t),
            message=message,
            pressure_bar=p,
            maasp_bar=maasp_bar,
            utilisation=None if u is None or not math.isfinite(u) else u,
            limiting_point=limiting,
            level=None if code is None else LEVEL_BY_CODE[code],
            details={"annulus_name": name, "config_version": st["cfg_version"], **details},
        )
        emits.append(Emit(ALERTS.name, key, event.encode(), kind.value, t))

    # --- utilisation level ---------------------------------------------------------------
    if u_idx:
        thresholds = cfg.thresholds if cfg is not None else DEFAULT_THRESHOLDS
        prev_code = LEVEL_CODES[UtilisationLevel(st["level"])]
        if len(u_idx) <= SMALL_GROUP:
            # The scalar fold that levels_for_series is the vectorised form of.
            utils_l: list[float] = []
            codes_l: list[int] = []
            level = LEVEL_BY_CODE[prev_code]
            for p in p_use:
                u = utilisation(p, maasp_bar)
                level = next_level(level, u, thresholds)
                utils_l.append(math.nan if u is None else u)
                codes_l.append(LEVEL_CODES[level])
        else:
            p_arr = np.asarray(p_use, dtype=np.float64)
            utils = (
                utilisation_array(p_arr, maasp_bar)
                if maasp_bar is not None
                else np.full(p_arr.shape, np.nan)
            )
            codes = levels_for_series(LEVEL_BY_CODE[prev_code], utils, thresholds)
            utils_l, codes_l = utils.tolist(), codes.tolist()
        counts = [0, 0, 0, 0]
        for c in codes_l:
            counts[c] += 1
        out.level_counts = counts
        label = f"annulus {name or annulus_id}" + (f" of well {well}" if well is not None else "")
        old = prev_code
        for j, new in enumerate(codes_l):
            if new == old:
                continue
            t, p, u = t_use[j], p_use[j], utils_l[j]
            st["level_ts"] = t
            state_event(t, p, u, new, "level_change")
            what = (
                f"{label}: {p:.1f} bar is {_fmt_util(u)} of MAASP "
                f"{maasp_bar if maasp_bar is None else round(maasp_bar, 1)} bar"
                f" (limiting point {limiting})"
            )
            if new > old:
                for lvl, kind, severity in _RAISE:
                    if old < lvl <= new:
                        alert(
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
                alert(
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
        st["level"] = LEVEL_BY_CODE[codes_l[-1]].value
        st["reading_ts"] = t_use[-1]
        st["pressure_bar"] = p_use[-1]
        st["utilisation"] = utils_l[-1] if math.isfinite(utils_l[-1]) else None

    # --- SAP and diagnostic test due -----------------------------------------------------
    if configured and cfg is not None and not cfg.imposed_pressure:
        sap_state = sap_state_of(st["sap"])
        if sap is not None:
            assert len(io) == n, "a SAP step handed over is of readings all in order"
            new_sap, findings = sap
        elif len(io) == n:
            new_sap, findings = sap_step(
                sap_state, ts, pressure, temperature, quality != BAD, params.sap
            )
        else:
            sel = np.asarray(io, dtype=np.intp)
            new_sap, findings = sap_step(
                sap_state, ts[sel], pressure[sel], temperature[sel], quality[sel] != BAD, params.sap
            )
        if any(f.kind == "sap_detected" for f in findings):
            st["sap_detected"] = True
        elif new_sap.phase == "bled" and sap_state.phase != "bled":
            st["sap_detected"] = False  # a new bleed-down: judged afresh when it rebuilds
        st["diagnostic_test_due"] = new_sap.diag_raised
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
            alert(
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
            state_event(
                f.ts,
                f.pressure_bar,
                float(u_f[0]),
                LEVEL_CODES[UtilisationLevel(st["level"])],
                "sap",
            )
        st["sap"] = new_sap
    elif configured and cfg is not None:
        st["sap_detected"] = st["diagnostic_test_due"] = False

    # --- heartbeat -----------------------------------------------------------------------
    if u_idx and st["reading_ts"] is not None:
        t_last = st["reading_ts"]
        hb = st["hb_ts"]
        if hb is None or t_last - hb >= params.heartbeat_s:
            state_event(
                t_last,
                st["pressure_bar"],
                st["utilisation"],
                LEVEL_CODES[UtilisationLevel(st["level"])],
                "heartbeat",
            )

    emits.sort(key=lambda e: e.ts)  # stable: a level's alerts stay after its state
    out.emits = emits
    return out


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
    What is the same arithmetic for every reading is done for the whole batch with numpy:
    order, usability, utilisation, the hysteresis levels and the SAP smoothing
    (:func:`shared.domain.sap.sap_step_many`). An annulus whose readings all arrive in
    order, change no level and find nothing (the usual case) then only needs its new state
    and, when due, a heartbeat. Every other annulus (a level change, a SAP or diagnostic
    finding, late readings, no config) is judged by :func:`judge_annulus` itself, handed
    the SAP step taken here when its readings are all in order.
    """
    g_n = len(annulus_ids)
    starts = np.asarray(starts, dtype=np.intp)
    ends = np.asarray(ends, dtype=np.intp)
    lens = ends - starts
    gid = np.repeat(np.arange(g_n), lens)
    nan = math.nan
    cfg_rows = []
    for cfg, st in zip(cfgs, states, strict=True):
        configured = cfg is not None and not cfg.deleted
        th = cfg.thresholds if cfg is not None else DEFAULT_THRESHOLDS
        m = cfg.maasp_bar if configured and cfg is not None else None
        newest = st["newest_ts"] if st and st["newest_ts"] is not None else -math.inf
        level = LEVEL_CODES[UtilisationLevel(st["level"])] if st else UNKNOWN
        maasp_or_nan = nan if m is None else m
        cfg_rows.append(
            (configured, maasp_or_nan, th.warning, th.exceeded, th.clear_band, newest, level)
        )
    configured_g, maasp_g, warn_g, exc_g, band_g, newest_g, prev_g = (
        np.array(c) for c in zip(*cfg_rows, strict=True)
    )
    # In order: each reading newer than the one before it (and than the state's newest).
    fine = configured_g.astype(bool) & (lens > 0)
    if ts.shape[0] > 1:
        same = gid[1:] == gid[:-1]
        fine[gid[1:][same & ~(ts[1:] > ts[:-1])]] = False
    first = np.minimum(starts, max(ts.shape[0] - 1, 0))
    if ts.shape[0]:
        fine &= ts[first] > newest_g

    # Levels of the usable readings, every annulus at once (the latches of
    # shared.domain.utilisation.levels_for_series, restarted at each annulus).
    usable = (quality != BAD) & ~np.isnan(pressure)
    u_idx = np.flatnonzero(usable)
    ug = gid[u_idx]
    utils = utilisation_array(pressure[u_idx], maasp_g[ug])
    unknown = np.isnan(utils)
    ucnt = np.bincount(ug, minlength=g_n)
    ustart = np.cumsum(ucnt) - ucnt
    has_u = ucnt > 0
    firsts = ustart[has_u]
    prev = prev_g.astype(np.int8)
    with np.errstate(invalid="ignore"):
        w_set = utils >= warn_g[ug]
        w_reset = (utils < (warn_g - band_g)[ug]) | unknown
        e_set = utils >= exc_g[ug]
        e_reset = (utils < (exc_g - band_g)[ug]) | unknown
    warn = _segmented_latch(w_set, w_reset, firsts, prev[has_u] >= WARNING)
    exc = _segmented_latch(e_set, e_reset, firsts, prev[has_u] == EXCEEDED)
    codes = (NORMAL + warn + exc).astype(np.int8)
    codes[unknown] = UNKNOWN
    before = np.empty_like(codes)
    in_order = fine.copy()
    if codes.shape[0]:
        before[1:] = codes[:-1]
        before[firsts] = prev[has_u]
        changed = np.bincount(ug[codes != before], minlength=g_n) > 0
        fine &= ~changed

    # SAP for the configured annuli in order that are not operator-pressured, a level
    # change or not: what judge_annulus would step one reading at a time is stepped here
    # (and handed to it when it judges the annulus for its level change or SAP finding).
    sap_g = [
        i
        for i in np.flatnonzero(in_order).tolist()
        if not cfgs[i].imposed_pressure  # type: ignore[union-attr]
    ]
    sap_out: dict[int, tuple[SapState, list[Any]]] = {}
    sap_in: dict[int, SapState] = {}
    if sap_g:
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
        for i, st0, res in zip(sap_g, sap_states, results, strict=True):
            sap_out[i] = res
            sap_in[i] = st0
            if res[1]:
                fine[i] = False  # a finding: its alerts are judge_annulus' business

    # Per annulus, only what is left: the state and a heartbeat when due.
    last_read = ts[np.maximum(ends - 1, 0)].tolist() if ts.shape[0] else [nan] * g_n
    last_u = ustart + ucnt - 1
    lu = np.maximum(last_u, 0)
    u_t = ts[u_idx[lu]].tolist() if u_idx.shape[0] else [nan] * g_n
    u_p = pressure[u_idx[lu]].tolist() if u_idx.shape[0] else [nan] * g_n
    u_u = utils[lu].tolist() if u_idx.shape[0] else [nan] * g_n
    ucnt_l = ucnt.tolist()
    prev_l = prev_g.tolist()
    fine_l = fine.tolist()
    heartbeat_s = params.heartbeat_s
    outcomes: list[AnnulusOutcome] = []
    for g in range(g_n):
        state = states[g]
        cfg = cfgs[g]
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
                    state,
                    cfg,
                    params,
                    sap_out.get(g),
                )
            )
            continue
        assert cfg is not None
        st = dict(state) if state else new_state()
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
        if n_u and st["reading_ts"] is not None:
            t_last = st["reading_ts"]
            hb = st["hb_ts"]
            if hb is None or t_last - hb >= heartbeat_s:
                out.emits = [
                    _state_emit(
                        annulus_ids[g],
                        cfg.well_id,
                        cfg.name,
                        cfg.maasp_bar,
                        entity_key(cfg.well_id),
                        st,
                        t_last,
                        st["pressure_bar"],
                        st["utilisation"],
                        LEVEL_CODES[UtilisationLevel(st["level"])],
                        "heartbeat",
                    )
                ]
        outcomes.append(out)
    return outcomes


def _segmented_latch(
    set_: np.ndarray, reset: np.ndarray, firsts: np.ndarray, initial: np.ndarray
) -> np.ndarray:
    """A set/reset latch per annulus over the concatenated series (``firsts``: where each
    annulus' series starts, ``initial``: its latch before it); int8 0/1 after each element."""
    n = set_.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    v = np.full(n, -1, dtype=np.int8)
    v[reset] = 0
    v[set_] = 1
    at_first = v[firsts]
    v[firsts] = np.where(at_first >= 0, at_first, initial.astype(np.int8))
    last = np.maximum.accumulate(np.where(v >= 0, np.arange(n), -1))
    return v[last]
