"""``wims``: the one entry point for people and scripts.

wims up | down | status        the whole local stack (Kafka, PostgreSQL, five services)
wims migrate                   Alembic upgrade to head (honours WIMS_DATABASE_URL)
wims create-admin --email E    the first admin of a new install
wims topics                    create the topic catalogue on the broker
wims serve SERVICE             run one service in the foreground
wims sweep                     run the task reminder/escalation sweep once, now
wims simulate --ingest-url U --api-key K [--rate R --duration S --scenario sap:ID ...]
                               a SCADA simulator pushing readings to the ingest service
wims dead-letters list [--topic T --service S --reason R --since 2h --json]
wims dead-letters replay (--id ID ... | --topic T | --all) [--dry-run]
                               what the workers gave up on, and sending it back after a fix
"""

import argparse
import asyncio
import getpass
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shared.settings import PROJECT_ROOT, Settings, get_settings

SERVICES = ("api", "ingest", "maasp", "integrity", "tasks")
DEPLOY = PROJECT_ROOT / "deploy"


def _script_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("WIMS_RUN_DIR", str(settings.run_dir))
    env.setdefault("WIMS_KAFKA_PORT", str(settings.kafka_port))
    env.setdefault("WIMS_PG_PORT", str(settings.pg_port))
    env.setdefault("WIMS_KAFKA_VERSION", settings.kafka_version)
    return env


def _run_script(settings: Settings, script: str, verb: str) -> None:
    subprocess.run(["bash", str(DEPLOY / script), verb], check=True, env=_script_env(settings))


def _pidfile(settings: Settings, name: str) -> Path:
    return settings.run_dir / "pids" / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(settings: Settings, name: str) -> int | None:
    try:
        pid = int(_pidfile(settings, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _ready(settings: Settings, service: str) -> bool:
    try:
        r = httpx.get(f"http://{settings.bind_host}:{settings.port_of(service)}/readyz", timeout=2)
        return r.status_code == 200
    except httpx.HTTPError:
        return False


def start_service(settings: Settings, service: str) -> int:
    """Start ``wims serve SERVICE`` in the background; its pid and log go under the run dir."""
    pid = _read_pid(settings, service)
    if pid is not None:
        return pid
    (settings.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "pids").mkdir(parents=True, exist_ok=True)
    log = open(settings.run_dir / "logs" / f"{service}.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", service],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=PROJECT_ROOT,
        start_new_session=True,  # a Ctrl-C in the terminal that ran `wims up` leaves it alone
    )
    _pidfile(settings, service).write_text(str(proc.pid))
    return proc.pid


def stop_pid(pid: int, timeout_s: float = 15.0) -> None:
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
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    _run_script(settings, "kafka.sh", "start")
    if not settings.database_url:
        _run_script(settings, "postgres.sh", "start")
    cmd_migrate(settings, args)
    cmd_topics(settings, args)
    for service in SERVICES:
        already = _read_pid(settings, service)
        pid = start_service(settings, service)
        print(f"{service:<10} {'already running' if already else 'started'} (pid {pid})")
    deadline = time.monotonic() + args.timeout
    pending = set(SERVICES)
    while pending and time.monotonic() < deadline:
        for service in sorted(pending):
            if _ready(settings, service):
                pending.discard(service)
            elif _read_pid(settings, service) is None:
                print(f"{service} exited; see {settings.run_dir / 'logs' / (service + '.log')}")
                return 1
        time.sleep(0.5)
    if pending:
        print(f"not ready after {args.timeout:.0f} s: {', '.join(sorted(pending))}")
        return 1
    print("\nWIMS is up:")
    _print_status(settings)
    return 0


def _print_status(settings: Settings) -> None:
    for service in SERVICES:
        pid = _read_pid(settings, service)
        url = f"http://{settings.bind_host}:{settings.port_of(service)}"
        state = "ready" if pid and _ready(settings, service) else ("starting" if pid else "stopped")
        print(f"  {service:<10} {state:<9} {url:<24} pid {pid or '-'}")
    print(f"  {'kafka':<10} {'':<9} {settings.kafka_bootstrap}")
    print(f"  {'postgres':<10} {'':<9} {settings.libpq_url}")
    print(f"  logs and pids: {settings.run_dir}")


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    for service in reversed(SERVICES):
        pid = _read_pid(settings, service)
        if pid is not None:
            stop_pid(pid)
            print(f"{service}: stopped (pid {pid})")
        _pidfile(settings, service).unlink(missing_ok=True)
    if args.services_only:
        return 0
    _run_script(settings, "kafka.sh", "stop")
    if not settings.database_url:
        _run_script(settings, "postgres.sh", "stop")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    _print_status(settings)
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from shared.migrate import upgrade

    upgrade(settings)
    print("database: migrated to head")
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from shared.kafka import ensure_topics

    created = asyncio.run(ensure_topics(settings))
    print(f"kafka: topics ready ({len(created)} created)")
    return 0


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from shared.auth import hash_password
    from shared.db import make_engine
    from shared.enums import Role
    from shared.models import User

    password = args.password or os.environ.get("WIMS_ADMIN_PASSWORD") or getpass.getpass()
    if len(password) < 8:
        print("error: --password: at least 8 characters", file=sys.stderr)
        return 2
    engine = make_engine(settings)
    with Session(engine) as session, session.begin():
        user = session.scalar(select(User).where(User.email == args.email.lower()))
        if user is None:
            session.add(
                User(
                    email=args.email.lower(),
                    full_name=args.name or "",
                    password_hash=hash_password(password),
                    role=Role.admin,
                    is_active=True,
                )
            )
            print(f"admin {args.email} created")
        else:
            user.password_hash = hash_password(password)
            user.role = Role.admin
            user.is_active = True
            # A reset password revokes the tokens issued with the old one (services/api/deps.py).
            user.token_version = User.token_version + 1
            print(f"admin {args.email} exists: password reset, role admin, active")
    engine.dispose()
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every HTTP service (api, ingest, ingest-sink) hands uvicorn besides its app.

    X-Forwarded-For/-Proto are believed only from ``WIMS_TRUSTED_PROXIES``: uvicorn's own
    default trusts them from 127.0.0.1, so any local client (or a process on the host) could
    pick the address the login throttle counts (services/api/ratelimit.py). No ``server``
    banner: it only tells a scanner what to try."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {
        "host": settings.bind_host,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "timeout_graceful_shutdown": 5,
        "server_header": False,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies,
    }


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from shared.observability import configure_logging

    configure_logging(settings.log_level)
    if args.service == "ingest-sink":
        import uvicorn

        # The readings sink on its own (run the ingest service with
        # WIMS_INGEST_SINK_ENABLED=false beside it).
        uvicorn.run(
            "services.ingest.app:create_sink_app",
            factory=True,
            port=settings.ingest_sink_port,
            **uvicorn_options(settings),
        )
        return 0
    if args.service in ("api", "ingest"):
        import uvicorn

        uvicorn.run(
            f"services.{args.service}.app:create_app",
            factory=True,
            port=settings.port_of(args.service),
            **uvicorn_options(settings),
        )
        return 0
    from importlib import import_module

    from shared.faust_app import run_worker

    module = import_module(f"services.{args.service}.worker")
    app, _ctx = module.create_app(settings)
    run_worker(app, settings.log_level)
    return 0


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from services.tasks.sweep import sweep_once
    from shared.observability import configure_logging

    configure_logging("WARNING")
    try:
        report = asyncio.run(sweep_once(settings))
    except Exception as exc:  # Kafka or the database unreachable: say which, not a traceback
        print(f"error: sweep: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def cmd_publish_annulus_config(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from services.maasp.config import (
        UnknownAnnulus,
        annulus_config_from_db,
        publish_annulus_config,
    )
    from shared.db import make_engine

    engine = make_engine(settings)
    try:
        with Session(engine) as session, session.begin():
            config = annulus_config_from_db(session, args.annulus_id, args.version)
    except UnknownAnnulus as exc:
        print(f"error: --annulus-id: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    asyncio.run(publish_annulus_config(settings, config))
    print(
        f"annulus {config.annulus_id} config v{config.version} published "
        f"({len(config.critical_points)} critical points)"
    )
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from services.ingest.simulator import run

    return run(settings.libpq_url, args)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from services.demo import run_demo

    return run_demo(settings, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Kafka, PostgreSQL and the five services")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /readyz")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop everything `wims up` started")
    down.add_argument(
        "--services-only", action="store_true", help="leave Kafka and PostgreSQL running"
    )
    down.set_defaults(func=cmd_down)
    sub.add_parser("status", help="where each part listens").set_defaults(func=cmd_status)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)
    sub.add_parser("topics", help="create the Kafka topics").set_defaults(func=cmd_topics)
    admin = sub.add_parser("create-admin", help="create (or reset) an admin user")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="default: $WIMS_ADMIN_PASSWORD, else prompt")
    admin.add_argument("--name", default="")
    admin.set_defaults(func=cmd_create_admin)
    demo = sub.add_parser(
        "demo", help="start the stack, seed a sample field, run the simulator with incidents"
    )
    demo.add_argument("--wells", type=int, default=20)
    demo.add_argument("--seed", type=int, default=7, help="of the sample field")
    demo.add_argument("--rate", type=float, default=300.0, help="readings per wall second")
    demo.add_argument("--duration", type=float, default=900.0, help="wall seconds to simulate")
    demo.add_argument("--time-scale", type=float, default=30.0, help="event s per wall s")
    demo.add_argument("--sssv-after", type=float, default=60.0, help="s before the SSSV fails")
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /readyz")
    demo.set_defaults(func=cmd_demo)
    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=(*SERVICES, "ingest-sink"))
    serve.set_defaults(func=cmd_serve)
    pac = sub.add_parser(
        "publish-annulus-config",
        help="publish an annulus' config (critical points, thresholds) from the database",
    )
    pac.add_argument("--annulus-id", type=int, required=True)
    pac.add_argument(
        "--version", type=int, default=None, help="default: the next outbox sequence value"
    )
    pac.set_defaults(func=cmd_publish_annulus_config)
    simulate = sub.add_parser(
        "simulate", help="a SCADA simulator pushing realistic readings to the ingest service"
    )
    from services.ingest.simulator import add_arguments as add_simulate_arguments

    add_simulate_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)
    sub.add_parser(
        "sweep", help="open task reminders for barrier tests coming due, escalate overdue ones"
    ).set_defaults(func=cmd_sweep)
    from services.deadletters import add_arguments as add_dead_letter_arguments

    add_dead_letter_arguments(
        sub.add_parser(
            "dead-letters", help="list the dead letters, or replay them after a fix (see -h)"
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:  # invalid configuration: say which setting, not a traceback
        print(f"error: configuration: {exc}", file=sys.stderr)
        return 2
    return int(args.func(settings, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
