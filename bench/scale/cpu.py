"""CPU of groups of processes over a stretch of time, for bench.scale's table.

A group is one root process, read either alone (the load client: its children are reported
on rows of their own) or with every process below it (a service, a bare client, the broker,
PostgreSQL: the postmaster and its backends). A tree's CPU counts, for each live process in
it, its own utime + stime and cutime + cstime, the CPU of the children it has already waited
for: a PostgreSQL backend that ends during the stretch stays counted in its postmaster.

A root that cannot be read at the end of the stretch (it exited: its /proc entry went with
it) reports ``None``, not 0 %: a process sampled after its exit looked idle before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    ppid: int
    own: float  # utime + stime, seconds
    reaped: float  # cutime + cstime: the children it has waited for, seconds


def parse_stat(text: str) -> ProcStat:
    """One /proc/<pid>/stat line. The command name (field 2) may hold spaces and ")":
    the fields are counted from the last ")"."""
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state) of proc(5): ppid is field 4, utime..cstime 14..17.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ProcStat(
        ppid=int(fields[1]), own=(utime + stime) / CLK_TCK, reaped=(cutime + cstime) / CLK_TCK
    )


def read_one(pid: int) -> ProcStat | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def read_table() -> dict[int, ProcStat]:
    """Every process on the machine."""
    table: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_one(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def tree_cpu(root: int, table: Mapping[int, ProcStat]) -> float | None:
    """CPU seconds of ``root`` and every process below it, with those they have waited
    for; ``None`` when ``root`` is not in ``table``."""
    if root not in table:
        return None
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid].own + table[pid].reaped
        todo.extend(children.get(pid, ()))
    return total


@dataclass(frozen=True)
class Group:
    pid: Callable[[], int | None]  # the root, looked up when sampled
    tree: bool = True  # with its descendants, or the root alone


def sample(groups: Mapping[str, Group], table: Mapping[int, ProcStat]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, group in groups.items():
        pid = group.pid()
        if pid is None or pid not in table:
            out[name] = None
        elif group.tree:
            out[name] = tree_cpu(pid, table)
        else:
            out[name] = table[pid].own
    return out


def percent(
    start: Mapping[str, float | None], end: Mapping[str, float | None], seconds: float
) -> dict[str, float | None]:
    """CPU % of each group between two samples (100 % = one core); ``None`` where either
    sample could not read the group."""
    out: dict[str, float | None] = {}
    for name, s in end.items():
        s0 = start.get(name)
        out[name] = None if s is None or s0 is None else 100 * (s - s0) / seconds
    return out


#: Below this a stretch's CPU % is mostly the kernel's tick rounding (1/CLK_TCK s).
SHORT_S = 100 / CLK_TCK


@dataclass(frozen=True)
class Stretch:
    seconds: float
    busy: dict[str, float | None]  # CPU % by group

    def describe(self) -> str:
        parts = ", ".join(
            f"{name} {pct:.0f} %" if pct is not None else f"{name} ? % (not running)"
            for name, pct in self.busy.items()
        )
        short = f"; under {SHORT_S:.0f} s, so +-{100 / (CLK_TCK * self.seconds):.0f} %"
        return f"over {self.seconds:.2f} s{short if self.seconds < SHORT_S else ''}: {parts}"


class Cpu:
    """CPU % of named groups of processes over a stretch of time (100 % = one core)."""

    def __init__(self, groups: dict[str, Group]) -> None:
        self.groups = groups
        self.start: dict[str, float | None] = {}
        self.t0 = 0.0

    def begin(self) -> None:
        self.start, self.t0 = sample(self.groups, read_table()), time.monotonic()

    def end(self) -> Stretch:
        now, took = sample(self.groups, read_table()), time.monotonic() - self.t0
        return Stretch(took, percent(self.start, now, took))
