"""The bookkeeping behind `wims up --scale`, `wims stop` and `wims status`: names, counts,
pid and port files, and how a process sharing a port is known to be serving."""

import argparse
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from services import cli, processes
from services.processes import Instance
from shared.infrastructure.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(run_dir=tmp_path, environment="test")


def test_scale_is_read_per_service_and_refuses_what_it_cannot_run() -> None:
    assert processes.parse_scale("maasp=2, integrity=3,api=1") == {
        "maasp": 2,
        "integrity": 3,
        "api": 1,
    }
    for bad, why in [
        ("maasp", "SERVICE=N"),
        ("kafka=2", "SERVICE=N"),
        ("maasp=0", "1 to 32"),
        ("maasp=two", "1 to 32"),
        ("maasp=33", "1 to 32"),
    ]:
        with pytest.raises(ValueError, match=why):
            processes.parse_scale(bad)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "--scale", "maasp=0"])


def test_a_process_is_named_by_service_and_number() -> None:
    assert processes.parse_instance("maasp") == ("maasp", None)
    assert processes.parse_instance("ingest.2") == ("ingest", 2)
    for bad in ("kafka.1", "maasp.0", "maasp.x"):
        with pytest.raises(ValueError):
            processes.parse_instance(bad)
    assert Instance("tasks", 3).name == "tasks.3"


def _started(settings: Settings, inst: Instance, pid: int, port: int | None = None) -> None:
    (settings.run_dir / "pids").mkdir(exist_ok=True)
    processes.pidfile(settings, inst).write_text(str(pid))
    if port is not None:
        (settings.run_dir / "ports").mkdir(exist_ok=True)
        processes.portfile(settings, inst).write_text(f"{port}\n")


def test_scale_runs_processes_one_to_n_and_stops_those_above(settings: Settings) -> None:
    for i in (1, 2, 3):
        _started(settings, Instance("maasp", i), 999_999_999)  # no such process: crashed
    _started(settings, Instance("tasks", 2), 999_999_999)
    (settings.run_dir / "pids" / "kafka.pid").write_text("1")  # not a service process
    wanted, surplus = cli._plan(settings, {"maasp": 2, "ingest": 2})
    assert [i.name for i in wanted] == [
        "api.1",
        "ingest.1",
        "ingest.2",
        "maasp.1",
        "maasp.2",
        "integrity.1",
        "tasks.2",  # not named: the processes it had, a crashed one started again
    ]
    assert [i.name for i in surplus] == ["maasp.3"]


def test_each_worker_process_is_found_on_its_own_port(settings: Settings) -> None:
    _started(settings, Instance("maasp", 2), os.getpid(), port=41234)
    assert processes.port_of(settings, Instance("maasp", 1)) == settings.maasp_port
    assert processes.port_of(settings, Instance("maasp", 2)) == 41234
    assert processes.port_of(settings, Instance("maasp", 3)) is None  # not started
    # api and ingest processes share the service's port
    assert processes.port_of(settings, Instance("ingest", 2)) == settings.ingest_port
    assert processes.read_pid(settings, Instance("maasp", 2)) == os.getpid()


def test_stop_forgets_the_process(settings: Settings) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    inst = Instance("tasks", 2)
    _started(settings, inst, sleeper.pid, port=41235)
    args = argparse.Namespace(names=[("tasks", 2)])
    assert cli.cmd_stop(settings, args) == 0
    assert sleeper.wait(5) is not None
    assert processes.known(settings, "tasks") == []
    assert not processes.portfile(settings, inst).exists()
    assert cli.cmd_stop(settings, args) == 1  # nothing left to stop


def test_a_zombie_is_not_running() -> None:
    # A killed service whose new parent has not reaped it yet must be started again.
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while processes.alive(child.pid):
        assert time.monotonic() < deadline, "an exited (unreaped) process counted as alive"
        time.sleep(0.01)
    assert Path(f"/proc/{child.pid}").exists(), "still a zombie: not reaped yet"
    child.wait()
    assert processes.alive(os.getpid())


def test_processes_share_a_port_and_each_is_seen_listening() -> None:
    first = processes.reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = processes.reuse_port_socket("127.0.0.1", port)  # the same port: allowed
    try:
        # Bound, not yet listening (the app still starting): not serving.
        assert not processes.listens_on(os.getpid(), port)
        first.listen()
        second.listen()
        assert processes.listens_on(os.getpid(), port)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        other = subprocess.Popen(["sleep", "30"])
        try:
            assert not processes.listens_on(other.pid, port)
        finally:
            other.kill()
            other.wait()
    finally:
        first.close()
        second.close()
    plain = socket.socket()
    try:
        holder = processes.reuse_port_socket("127.0.0.1", 0)
        holder.listen()
        with pytest.raises(OSError):  # without SO_REUSEPORT the port is taken
            plain.bind(("127.0.0.1", holder.getsockname()[1]))
        holder.close()
    finally:
        plain.close()
