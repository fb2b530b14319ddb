"""bench.scale's CPU column: a process's CPU with the processes below it, read from /proc.

It once showed 0 % for the bare clients: they were sampled after they had exited, when
/proc no longer had them, and a missing process counted as an idle one."""

import subprocess
import sys
import time

from bench.scale.cpu import (
    CLK_TCK,
    SHORT_S,
    Cpu,
    Group,
    ProcStat,
    Stretch,
    parse_stat,
    percent,
    read_table,
    tree_cpu,
)


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, cut: int, cst: int) -> str:
    rest = [ppid, pid, pid, 0, -1, 4194560, 100, 0, 0, 0, utime, stime, cut, cst, 20, 0, 1, 0]
    return f"{pid} ({comm}) S " + " ".join(str(v) for v in rest) + "\n"


def test_parse_stat_counts_fields_from_the_last_parenthesis() -> None:
    line = stat_line(42, "py (worker) x", 7, utime=300, stime=100, cut=50, cst=25)
    assert parse_stat(line) == ProcStat(ppid=7, own=400 / CLK_TCK, reaped=75 / CLK_TCK)


def test_tree_cpu_sums_the_root_its_descendants_and_their_waited_for_children() -> None:
    table = {
        10: ProcStat(ppid=1, own=1.0, reaped=0.5),  # the root; 0.5 s of children it reaped
        11: ProcStat(ppid=10, own=2.0, reaped=0.0),
        12: ProcStat(ppid=11, own=4.0, reaped=0.25),  # a grandchild
        20: ProcStat(ppid=1, own=100.0, reaped=0.0),  # a sibling of the root: not counted
        21: ProcStat(ppid=20, own=100.0, reaped=0.0),
    }
    assert tree_cpu(10, table) == 7.75
    assert tree_cpu(12, table) == 4.25
    assert tree_cpu(99, table) is None


def test_tree_cpu_stops_on_a_cycle() -> None:
    # A pid reused between two reads of /proc can make a parent link point back.
    table = {5: ProcStat(ppid=6, own=1.0, reaped=0.0), 6: ProcStat(ppid=5, own=2.0, reaped=0.0)}
    assert tree_cpu(5, table) == 3.0


def test_percent_is_none_for_a_process_not_read_not_zero() -> None:
    start = {"busy": 10.0, "gone": 3.0, "late": None}
    end = {"busy": 15.0, "gone": None, "late": 4.0}
    assert percent(start, end, 10.0) == {"busy": 50.0, "gone": None, "late": None}


def test_a_child_that_exited_stays_counted_in_the_tree_of_its_live_parent() -> None:
    """A shell runs a python busy loop of ~0.3 s of CPU and then sleeps: once the loop has
    exited, its CPU is in the shell's cutime, so the shell's tree still counts it."""
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    shell = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -c "$0"; echo done; sleep 30', busy],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        cpu = Cpu(
            {"shell": Group(lambda: shell.pid), "shell alone": Group(lambda: shell.pid, tree=False)}
        )
        cpu.begin()
        assert shell.stdout is not None
        assert shell.stdout.readline().strip() == "done"  # the python loop has exited
        time.sleep(0.05)
        busy_pct = cpu.end().busy
        table = read_table()
        assert shell.pid in table
        assert table[shell.pid].reaped >= 0.29
        assert busy_pct["shell"] is not None and busy_pct["shell"] > 0
        assert busy_pct["shell alone"] is not None and busy_pct["shell alone"] < busy_pct["shell"]
    finally:
        shell.kill()
        shell.wait()
    gone = Cpu({"gone": Group(lambda: shell.pid)})
    gone.begin()
    assert gone.end().busy == {"gone": None}


def test_a_short_stretch_says_how_coarse_its_figures_are() -> None:
    assert Stretch(0.01, {"a": 50.0, "b": None}).describe() == (
        f"over 0.01 s; under {SHORT_S:.0f} s, so +-{100 / (CLK_TCK * 0.01):.0f} %: "
        "a 50 %, b ? % (not running)"
    )
    assert Stretch(5.0, {"a": 49.6}).describe() == "over 5.00 s: a 50 %"
