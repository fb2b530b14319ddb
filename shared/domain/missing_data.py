"""Missing data: an annulus whose SCADA tag has gone quiet (``data_stale``) and an annulus
with no MAASP (``maasp_missing``).

Pure domain code: no I/O; the caller passes the clock. docs/domain.md "Missing data".

Why: an integrity engineer's first daily check is that every monitored annulus is reporting
and has a MAASP; an annulus that is silent or has no limit is not being judged at all, and
nothing else in WIMS would say so (no reading means no MAASP alert).

- **data_stale**: an annulus with a SCADA tag is stale when its newest good reading (event
  time) is more than ``stale_after_s`` before now; an annulus that never sent a good reading
  counts from when its tag was mapped. ``stale_after_s`` is the well's own setting when it has
  one, else the global default (WIMS default 24 h, platform and subsea alike). Cleared when a
  good reading makes it fresh again.
- **maasp_missing**: an annulus whose newest MAASP is None (no critical points) or that has
  no MAASP result at all, once it has existed for ``grace_s`` (so a well being built does not
  raise it between creating an annulus and entering its critical points). Cleared when a MAASP
  exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: WIMS default: 24 h without a good reading (platform and subsea alike).
DATA_STALE_AFTER_S = 24 * 3600.0
#: WIMS default: an annulus may be without a MAASP for an hour while it is being configured.
MAASP_MISSING_GRACE_S = 3600.0


def stale_after(well_setting_s: float | None, default_s: float = DATA_STALE_AFTER_S) -> float:
    """The well's own staleness time when it has one, else the global default."""
    value = default_s if well_setting_s is None else float(well_setting_s)
    if value <= 0:
        raise ValueError(f"a staleness time must be > 0 s, got {value}")
    return value


def stale_since(last_good: datetime | None, tag_mapped_at: datetime) -> datetime:
    """What staleness counts from: the newest good reading, else when the tag was mapped."""
    return last_good if last_good is not None else tag_mapped_at


def is_stale(
    last_good: datetime | None, tag_mapped_at: datetime, now: datetime, stale_after_s: float
) -> bool:
    """True when the annulus has sent no good reading for more than ``stale_after_s``."""
    return now - stale_since(last_good, tag_mapped_at) > timedelta(seconds=stale_after_s)


def is_maasp_missing(
    has_result: bool,
    maasp_bar: float | None,
    annulus_created_at: datetime,
    now: datetime,
    grace_s: float = MAASP_MISSING_GRACE_S,
) -> bool:
    """True when the annulus has no MAASP and has existed for longer than ``grace_s``."""
    if has_result and maasp_bar is not None:
        return False
    return now - annulus_created_at > timedelta(seconds=grace_s)
