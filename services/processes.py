"""The local processes `wims up` runs: one or more of each service, each with its own pid
file, log and health port.

A process is named ``<service>.<index>``, index from 1 (``maasp.1``, ``maasp.2``); under the
run folder it has ``pids/<name>.pid``, ``logs/<name>.log`` and, for a stream worker,
``ports/<name>`` (the port of its /healthz, /readyz and /metrics).

Ports. The api and ingest processes of one service all listen on the service's one port:
each binds it with ``SO_REUSEPORT`` and the kernel spreads new connections over the
processes listening (``reuse_port_socket``; no process manager in front). The stream workers
(maasp, integrity, tasks) serve only health and metrics, so each needs a port of its own:
process 1 keeps the service's port (``WIMS_MAASP_PORT`` ...), every further one gets a free
port picked when it starts, handed to it as its ``WIMS_<SERVICE>_PORT`` and written to
``ports/<name>`` for `wims status` and the readiness checks (faust refuses port 0, so the
process cannot pick its own).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.infrastructure.settings import PROJECT_ROOT, Settings

SERVICES = ("api", "ingest", "maasp", "integrity", "tasks")
#: services whose processes share the service's port (SO_REUSEPORT)
SHARED_PORT = ("api", "ingest")
STREAM_WORKERS = ("maasp", "integrity", "tasks")


@dataclass(frozen=True, order=True)
class Instance:
    """One process of a service."""

    service: str
    index: int = 1

    @property
    def name(self) -> str:
        return f"{self.service}.{self.index}"


def parse_instance(text: str) -> tuple[str, int | None]:
    """``maasp`` -> (maasp, None: every process of it); ``maasp.2`` -> (maasp, 2)."""
    service, _, index = text.partition(".")
    if service not in SERVICES:
        raise ValueError(f"{text}: not a service ({', '.join(SERVICES)})")
    if not index:
        return service, None
    if not index.isdigit() or int(index) < 1:
        raise ValueError(f"{text}: the process number after the dot must be 1 or more")
    return service, int(index)


def parse_scale(text: str) -> dict[str, int]:
    """``maasp=2,integrity=2`` -> {"maasp": 2, "integrity": 2}."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        service, eq, count = part.partition("=")
        if not eq or service not in SERVICES:
            raise ValueError(
                f"{part}: expected SERVICE=N with SERVICE one of {', '.join(SERVICES)}"
            )
        if not count.isdigit() or not 1 <= int(count) <= 32:
            raise ValueError(f"{part}: N must be a whole number from 1 to 32")
        counts[service] = int(count)
    return counts


def _file(settings: Settings, folder: str, inst: Instance, suffix: str = "") -> Path:
    return settings.run_dir / folder / f"{inst.name}{suffix}"


def pidfile(settings: Settings, inst: Instance) -> Path:
    return _file(settings, "pids", inst, ".pid")


def logfile(settings: Settings, inst: Instance) -> Path:
    return _file(settings, "logs", inst, ".log")


def portfile(settings: Settings, inst: Instance) -> Path:
    return _file(settings, "ports", inst)


def known(settings: Settings, service: str) -> list[Instance]:
    """The processes of ``service`` that were started and not stopped (their pid file is
    there, the process alive or not), by index."""
    pattern = re.compile(rf"^{re.escape(service)}\.(\d+)\.pid$")
    try:
        names = os.listdir(settings.run_dir / "pids")
    except FileNotFoundError:
        return []
    return sorted(Instance(service, int(m[1])) for m in map(pattern.match, names) if m)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed service whose new parent has not
    reaped it yet is gone for every purpose here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: trust the signal
    return state != "Z"


def read_pid(settings: Settings, inst: Instance) -> int | None:
    """The pid of a live process, else None."""
    try:
        pid = int(pidfile(settings, inst).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def port_of(settings: Settings, inst: Instance) -> int | None:
    """Where the process answers /readyz (None: a stream worker whose port is not known)."""
    if inst.service in SHARED_PORT or inst.index == 1:
        return settings.port_of(inst.service)
    try:
        return int(portfile(settings, inst).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def url_of(settings: Settings, inst: Instance) -> str | None:
    port = port_of(settings, inst)
    return None if port is None else f"http://{settings.bind_host}:{port}"


def listens_on(pid: int, port: int) -> bool:
    """True when process ``pid`` holds a socket listening on TCP ``port`` (Linux /proc).

    With SO_REUSEPORT a request to the shared port reaches any one of the processes, so
    this is how one api or ingest process is known to be serving."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local address "0100007F:1F41", state 0A = LISTEN, inode in the tenth column
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def ready(settings: Settings, inst: Instance) -> bool:
    """The process is alive and its /readyz answers 200 (for a shared port: the service's
    /readyz answers 200 and this process is listening on it)."""
    pid = read_pid(settings, inst)
    url = url_of(settings, inst)
    if pid is None or url is None:
        return False
    if inst.service in SHARED_PORT and not listens_on(pid, settings.port_of(inst.service)):
        return False
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(settings: Settings, inst: Instance) -> tuple[int, bool]:
    """Start ``wims serve SERVICE`` in the background unless it runs; (pid, started)."""
    pid = read_pid(settings, inst)
    if pid is not None:
        return pid, False
    for folder in ("logs", "pids", "ports"):
        (settings.run_dir / folder).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if inst.service in STREAM_WORKERS:
        port = settings.port_of(inst.service) if inst.index == 1 else free_port(settings.bind_host)
        env[f"WIMS_{inst.service.upper()}_PORT"] = str(port)
        portfile(settings, inst).write_text(f"{port}\n")
    with open(logfile(settings, inst), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", inst.service],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal that ran `wims up` leaves it alone
        )
    pidfile(settings, inst).write_text(str(proc.pid))
    return proc.pid, True


def stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:
            pass
        if not alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def stop(settings: Settings, inst: Instance) -> int | None:
    """Stop one process (if it runs) and forget it; returns the pid it had."""
    pid = read_pid(settings, inst)
    if pid is not None:
        stop_pid(pid)
    pidfile(settings, inst).unlink(missing_ok=True)
    portfile(settings, inst).unlink(missing_ok=True)
    return pid


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening: uvicorn
    listens on it once the app has started, so a process still starting is never handed a
    connection; the other processes of the service keep taking them meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock
