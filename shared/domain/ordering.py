"""Late readings: which of an annulus' readings are in event-time order.

A reading is *late* when its timestamp is not after the newest one already seen for its
annulus (earlier readings of the same batch included): a historian replay, a duplicate, or
a replay of the worker's own input after a restart. A late reading is counted and otherwise
ignored, so an annulus' level always follows its newest reading and no stale alert is
raised (docs/domain.md, "How the worker applies it").

:func:`in_order` is the rule (the reference; plain Python, the fastest for the handful of
readings an annulus usually has in a batch). :func:`in_order_array` is its vectorised form
for long series and :func:`all_in_order` the fast path for many annuli at once, which only
says whether an annulus has any late reading. Both are property-tested equal to the rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def in_order(ts: Sequence[float], newest: float) -> tuple[list[int], float]:
    """The positions of the readings that are not late, and the newest timestamp after them.

    ``ts``: event times in arrival order; ``newest``: the newest one seen before them
    (``-math.inf`` when none).
    """
    kept: list[int] = []
    for i, t in enumerate(ts):
        if t > newest:
            kept.append(i)
            newest = t
    return kept, newest


def in_order_array(ts: np.ndarray, newest: float) -> tuple[np.ndarray, float]:
    """:func:`in_order` vectorised: a mask of the readings that are not late, and the newest
    timestamp after them."""
    n = ts.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool), newest
    running = np.maximum.accumulate(ts)
    prior = np.empty(n, dtype=np.float64)
    prior[0] = newest
    np.maximum(running[:-1], newest, out=prior[1:])
    return ts > prior, max(newest, float(running[-1]))


def all_in_order(
    ts: np.ndarray, starts: np.ndarray, ends: np.ndarray, newest: np.ndarray
) -> np.ndarray:
    """For many annuli at once, whether none of an annulus' readings is late.

    Annulus ``g``'s readings are ``ts[starts[g]:ends[g]]`` (arrival order, the annuli one
    after the other), ``newest[g]`` the newest timestamp seen before them. True where
    :func:`in_order` would keep every one of them (so for an annulus with none).
    """
    starts = np.asarray(starts, dtype=np.intp)
    lens = np.asarray(ends, dtype=np.intp) - starts
    ok = np.ones(starts.shape[0], dtype=bool)
    if ts.shape[0] == 0:
        return ok
    # In order is strictly increasing, each annulus' first reading newer than its newest.
    gid = np.repeat(np.arange(starts.shape[0]), lens)
    same = gid[1:] == gid[:-1]
    ok[gid[1:][same & ~(ts[1:] > ts[:-1])]] = False
    has = lens > 0
    ok[has] &= ts[starts[has]] > np.asarray(newest, dtype=np.float64)[has]
    return ok
