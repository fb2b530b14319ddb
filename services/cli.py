"""``wims``: the one entry point for people and scripts.

wims up | down | status        the whole local stack (Kafka, PostgreSQL, five services)
wims up --scale maasp=2,ingest=2   N processes of a service (each its own pid file and log)
wims stop SERVICE[.N] ...      stop one process (maasp.2) or every process of a service
wims logs SERVICE[.N] [-n 40]  the last lines of a process's log
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
import subprocess
import sys
import time
from typing import Any

from services import processes
from services.processes import SERVICES, Instance
from shared.infrastructure.settings import PROJECT_ROOT, Settings, get_settings

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


def _scale_arg(text: str) -> dict[str, int]:
    try:
        return processes.parse_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _instance_arg(text: str) -> tuple[str, int | None]:
    try:
        return processes.parse_instance(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _plan(settings: Settings, scale: dict[str, int]) -> tuple[list[Instance], list[Instance]]:
    """(the processes to run, the ones to stop). A service named in ``scale`` runs
    processes 1..N and stops any above; any other keeps the processes it had (a killed one
    is started again), at least process 1."""
    wanted: list[Instance] = []
    surplus: list[Instance] = []
    for service in SERVICES:
        had = processes.known(settings, service)
        if service in scale:
            wanted += [Instance(service, i) for i in range(1, scale[service] + 1)]
            surplus += [inst for inst in had if inst.index > scale[service]]
        else:
            wanted += had or [Instance(service, 1)]
    return wanted, surplus


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    _run_script(settings, "kafka.sh", "start")
    if not settings.database_url:
        _run_script(settings, "postgres.sh", "start")
    cmd_migrate(settings, args)
    cmd_topics(settings, args)
    wanted, surplus = _plan(settings, getattr(args, "scale", None) or {})
    for inst in reversed(surplus):
        pid = processes.stop(settings, inst)
        print(f"{inst.name:<12} stopped (pid {pid or '-'}): above the --scale count")
    for inst in wanted:
        pid, started = processes.start(settings, inst)
        print(f"{inst.name:<12} {'started' if started else 'already running'} (pid {pid})")
    deadline = time.monotonic() + args.timeout
    pending = set(wanted)
    while pending and time.monotonic() < deadline:
        for inst in sorted(pending):
            if processes.ready(settings, inst):
                pending.discard(inst)
            elif processes.read_pid(settings, inst) is None:
                print(f"{inst.name} exited; see {processes.logfile(settings, inst)}")
                return 1
        time.sleep(0.5)
    if pending:
        names = ", ".join(inst.name for inst in sorted(pending))
        print(f"not ready after {args.timeout:.0f} s: {names}")
        return 1
    print("\nWIMS is up:")
    _print_status(settings)
    return 0


def _print_status(settings: Settings) -> None:
    for service in SERVICES:
        for inst in processes.known(settings, service) or [Instance(service, 1)]:
            pid = processes.read_pid(settings, inst)
            url = processes.url_of(settings, inst) or "-"
            state = "ready" if pid and processes.ready(settings, inst) else "starting"
            state = state if pid else "stopped"
            print(f"  {inst.name:<12} {state:<9} {url:<24} pid {pid or '-'}")
    print(f"  {'kafka':<12} {'':<9} {settings.kafka_bootstrap}")
    print(f"  {'postgres':<12} {'':<9} {settings.libpq_url}")
    print(f"  logs and pids: {settings.run_dir} (logs/<process>.log, pids/<process>.pid)")


def _select(settings: Settings, names: list[tuple[str, int | None]]) -> list[Instance]:
    """The known processes a list of ``service`` / ``service.N`` names picks."""
    chosen: list[Instance] = []
    for service, index in names:
        had = processes.known(settings, service)
        chosen += [inst for inst in had if index is None or inst.index == index]
    return sorted(set(chosen))


def cmd_stop(settings: Settings, args: argparse.Namespace) -> int:
    chosen = _select(settings, args.names)
    if not chosen:
        print("no such process is running (see `wims status`)")
        return 1
    for inst in sorted(chosen, key=lambda i: (SERVICES.index(i.service), i.index), reverse=True):
        pid = processes.stop(settings, inst)
        print(f"{inst.name}: stopped (pid {pid or '-'})")
    return 0


def cmd_logs(settings: Settings, args: argparse.Namespace) -> int:
    chosen = _select(settings, args.names)
    if not chosen:
        print("no such process (see `wims status`)")
        return 1
    for inst in chosen:
        path = processes.logfile(settings, inst)
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        print(f"== {inst.name} ({path})")
        print("\n".join(lines[-args.lines :]))
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    for service in reversed(SERVICES):
        for inst in reversed(processes.known(settings, service)):
            pid = processes.stop(settings, inst)
            if pid is not None:
                print(f"{inst.name}: stopped (pid {pid})")
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
    from shared.persistence.migrate import upgrade

    upgrade(settings)
    print("database: migrated to head")
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from shared.infrastructure.kafka import ensure_topics

    created = asyncio.run(ensure_topics(settings))
    print(f"kafka: topics ready ({len(created)} created)")
    return 0


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from shared.contracts.enums import Role
    from shared.infrastructure.auth import hash_password
    from shared.infrastructure.db import make_engine
    from shared.persistence.models import User

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
    from shared.infrastructure.observability import configure_logging

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
    if args.service in processes.SHARED_PORT:
        import uvicorn

        # Every process of the service binds the one port with SO_REUSEPORT (see
        # services/processes.py): N of them share the connections without a front process.
        port = settings.port_of(args.service)
        sock = processes.reuse_port_socket(settings.bind_host, port)
        config = uvicorn.Config(
            f"services.{args.service}.app:create_app",
            factory=True,
            port=port,
            **uvicorn_options(settings),
        )
        uvicorn.Server(config).run(sockets=[sock])
        return 0
    from importlib import import_module

    from shared.infrastructure.faust_app import run_worker

    module = import_module(f"services.{args.service}.worker")
    app, _ctx = module.create_app(settings)
    run_worker(app, settings.log_level)
    return 0


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from services.tasks.sweep import sweep_once
    from shared.infrastructure.observability import configure_logging

    configure_logging("WARNING")
    try:
        report = asyncio.run(sweep_once(settings))
    except Exception as exc:  # Kafka or the database unreachable: say which, not a traceback
        print(f"error: sweep: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def cmd_maintenance(settings: Settings, args: argparse.Namespace) -> int:
    from services.ingest.maintenance import run_once
    from shared.infrastructure.observability import configure_logging

    configure_logging("WARNING")
    try:
        report = run_once(settings)
    except Exception as exc:  # the database unreachable: say so, not a traceback
        print(f"error: maintenance: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def cmd_publish_annulus_config(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from services.maasp.pump import publish_annulus_config
    from services.maasp.store import UnknownAnnulus, annulus_config_from_db
    from shared.infrastructure.db import make_engine

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
    from tools.simulator import run

    return run(settings.libpq_url, args)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from tools.demo import run_demo

    return run_demo(settings, args, start_stack=cmd_up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Kafka, PostgreSQL and the five services")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /readyz")
    up.add_argument(
        "--scale",
        type=_scale_arg,
        default={},
        metavar="SERVICE=N,...",
        help="run N processes of a service (e.g. maasp=2,integrity=2,tasks=2,ingest=2,api=2); "
        "processes above N are stopped; a service not named keeps the processes it has",
    )
    up.set_defaults(func=cmd_up)
    stop = sub.add_parser("stop", help="stop processes: a service (all of its) or SERVICE.N")
    stop.add_argument("names", nargs="+", type=_instance_arg, metavar="SERVICE[.N]")
    stop.set_defaults(func=cmd_stop)
    logs = sub.add_parser("logs", help="the last lines of a process's log (SERVICE or SERVICE.N)")
    logs.add_argument("names", nargs="+", type=_instance_arg, metavar="SERVICE[.N]")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(func=cmd_logs)
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
    from tools.simulator import add_arguments as add_simulate_arguments

    add_simulate_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)
    sub.add_parser(
        "sweep", help="open task reminders for barrier tests coming due, escalate overdue ones"
    ).set_defaults(func=cmd_sweep)
    sub.add_parser(
        "maintenance",
        help="make the measurement partitions ahead and apply retention (the ingest service "
        "also does it periodically)",
    ).set_defaults(func=cmd_maintenance)
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
