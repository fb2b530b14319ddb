"""docker-compose.yml, the Dockerfile and deploy/prometheus.yml agree with the code.

No Docker engine is needed: the files are read, not run. Service names come from
``services.cli.SERVICES``, ports from the defaults of ``shared.infrastructure.settings.Settings``, the
commands from the ``wims`` argument parser and the entry point from pyproject.toml, so a
change in the code that the container files do not follow fails here.
"""

import importlib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from services.cli import SERVICES, build_parser
from services.processes import SHARED_PORT
from shared.infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
PYPROJECT = ROOT / "pyproject.toml"

ENV_PREFIX = Settings.model_config["env_prefix"]  # "WIMS_"
ONE_SHOT = ("migrate", "topics")
INFRA = ("kafka", "postgres", "prometheus")
WIMS_CONTAINERS = (*ONE_SHOT, *SERVICES)
# Every WIMS container needs these; a service also needs its own port variable.
COMMON_ENV = ("WIMS_KAFKA_BOOTSTRAP", "WIMS_DATABASE_URL", "WIMS_JWT_SECRET", "WIMS_ENVIRONMENT")


def default_port(service: str) -> int:
    return int(Settings.model_fields[f"{service}_port"].default)


def port_var(service: str) -> str:
    return f"{ENV_PREFIX}{service.upper()}_PORT"


def setting_vars() -> set[str]:
    return {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # safe_load resolves the merge keys (<<) of the x-wims* extension fields.
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs, from the short or the long port syntax."""
    pairs = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.add((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        container = int(parts[-1])
        host = int(parts[-2]) if len(parts) >= 2 else container
        pairs.add((host, container))
    return pairs


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} with the variables in ``given``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"] or "", m["arg"] or ""
        if name in given:
            return given[name]
        if op.endswith("?"):
            raise LookupError(f"{name} is required: {arg}")
        return arg if op.endswith("-") else ""

    return _INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, args = (pending + line).partition(" ")
        out.append((instruction.upper(), args.strip()))
        pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


def test_the_whole_stack_is_there(services: dict[str, Any]) -> None:
    assert len(SERVICES) == 5
    missing = {*SERVICES, *ONE_SHOT, *INFRA} - services.keys()
    assert not missing, f"docker-compose.yml lacks {sorted(missing)}"


def test_every_wims_container_runs_the_one_image(services: dict[str, Any]) -> None:
    builds = {json.dumps(services[name].get("build"), sort_keys=True) for name in WIMS_CONTAINERS}
    images = {services[name].get("image") for name in WIMS_CONTAINERS}
    assert len(builds) == 1 and len(images) == 1, (builds, images)
    build = services["api"]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (COMPOSE.parent / context / dockerfile).resolve() == DOCKERFILE


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_serve_name(services: dict[str, Any], name: str) -> None:
    command = services[name]["command"]
    assert command == ["serve", name]
    args = build_parser().parse_args(command)  # a name the CLI would refuse fails here
    assert args.service == name


@pytest.mark.parametrize("name", SERVICES)
def test_service_probes_its_settings_port_and_only_http_services_publish_it(
    services: dict[str, Any], name: str
) -> None:
    """The api and ingest publish their port on the host; a stream worker publishes none,
    so `docker compose up --scale maasp=2` can start a second replica (two replicas cannot
    both hold one host port) and no fixed container name stands in the way either."""
    port = default_port(name)
    service = services[name]
    if name in SHARED_PORT:
        assert (port, port) in published_ports(service), f"{name} should publish {port}:{port}"
    else:
        assert published_ports(service) == set(), f"{name} must not publish a host port"
        assert str(port) in [str(p) for p in service.get("expose", [])]
    assert "container_name" not in service
    assert env_of(service).get(port_var(name)) == str(port)
    probe = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in probe, probe
    assert "urllib" in probe


@pytest.mark.parametrize("name", SERVICES)
def test_service_has_the_environment_it_needs(services: dict[str, Any], name: str) -> None:
    env = env_of(services[name])
    missing = {*COMMON_ENV, "WIMS_BIND_HOST", port_var(name)} - env.keys()
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert env["WIMS_ENVIRONMENT"] == "production"
    assert env["WIMS_BIND_HOST"] == "0.0.0.0"  # published ports reach nothing on 127.0.0.1


@pytest.mark.parametrize("name", SERVICES)
def test_service_starts_after_the_one_shot_jobs(services: dict[str, Any], name: str) -> None:
    service = services[name]
    depends = service["depends_on"]
    for job in ONE_SHOT:
        assert depends[job]["condition"] == "service_completed_successfully"
    assert service["restart"] == "unless-stopped"


@pytest.mark.parametrize(("job", "needs"), [("migrate", "postgres"), ("topics", "kafka")])
def test_one_shot_jobs(services: dict[str, Any], job: str, needs: str) -> None:
    service = services[job]
    assert service["command"] == [job]
    build_parser().parse_args(service["command"])
    assert service["depends_on"][needs]["condition"] == "service_healthy"
    assert "healthcheck" in services[needs]
    assert str(service["restart"]) == "no"
    # `wims` validates the settings before any command: production needs the secret too.
    missing = set(COMMON_ENV) - env_of(service).keys()
    assert not missing, f"{job} lacks {sorted(missing)}"


@pytest.mark.parametrize("name", WIMS_CONTAINERS)
def test_settings_accept_the_compose_environment(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's environment, as compose would hand it over, is a valid production
    configuration pointing at the kafka and postgres services."""
    for var in [v for v in os.environ if v.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(var)
    raw = env_of(services[name])
    # The secret has no default: compose refuses to start without it.
    with pytest.raises(LookupError, match="WIMS_JWT_SECRET"):
        interpolate(raw["WIMS_JWT_SECRET"], {})
    secret = "a-real-secret-" + "x" * 32
    for var, value in raw.items():
        monkeypatch.setenv(var, interpolate(value, {"WIMS_JWT_SECRET": secret}))
    settings = Settings()
    assert settings.environment == "production"
    assert settings.jwt_secret == secret
    assert settings.kafka_bootstrap.split(":")[0] == "kafka"
    url = make_url(settings.sqlalchemy_url)
    assert (url.host, url.drivername) == ("postgres", "postgresql+psycopg")
    if name in SERVICES:
        assert settings.port_of(name) == default_port(name)


def test_every_wims_variable_is_a_setting(services: dict[str, Any]) -> None:
    """Settings ignores unknown WIMS_* variables, so a misspelt one would silently do nothing."""
    known = setting_vars()
    named = {var for service in services.values() for var in env_of(service)}
    named |= set(re.findall(rf"\b{ENV_PREFIX}[A-Z0-9_]+\b", COMPOSE.read_text()))
    unknown = {var for var in named if var.startswith(ENV_PREFIX)} - known
    assert not unknown, f"not fields of shared.infrastructure.settings.Settings: {sorted(unknown)}"


def test_kafka_is_kraft_single_node_reachable_as_the_bootstrap(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{Settings.model_fields['kafka_version'].default}"
    env = env_of(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    for var in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        assert env[var] == "1"
    bootstrap = env_of(services["api"])["WIMS_KAFKA_BOOTSTRAP"]
    assert f"PLAINTEXT://{bootstrap}" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_postgres_credentials_match_the_database_url(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    env = env_of(postgres)
    url = make_url(env_of(services["api"])["WIMS_DATABASE_URL"])
    assert (url.host, url.port or 5432) == ("postgres", 5432)
    assert (url.username, url.password, url.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_prometheus_scrapes_every_service(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert (9090, 9090) in published_ports(prometheus)
    config = yaml.safe_load(PROMETHEUS.read_text())
    interval = config.get("global", {}).get("scrape_interval", "1m")
    scraped: dict[str, tuple[str, str]] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                scraped[target] = (
                    job.get("metrics_path", "/metrics"),
                    job.get("scrape_interval", interval),
                )
    discovered: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for dns in job.get("dns_sd_configs", []):
            assert dns["type"] == "A" and job.get("metrics_path", "/metrics") == "/metrics"
            discovered.update(dict.fromkeys(dns["names"], int(dns["port"])))
    for name in SERVICES:
        if name in SHARED_PORT:
            target = f"{name}:{default_port(name)}"
            assert scraped.get(target) == ("/metrics", "15s"), f"{target}: {scraped.get(target)}"
        else:
            # Every replica of a scaled stream worker: the service name resolves to each.
            assert discovered.get(name) == default_port(name), f"{name}: {discovered}"


def test_dockerfile_entrypoint_is_the_wims_console_script() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    final = final_stage()
    entrypoints = [json.loads(args) for ins, args in final if ins == "ENTRYPOINT"]
    assert entrypoints, "the final stage has no ENTRYPOINT"
    (script,) = entrypoints[-1]
    assert script in scripts, f"{script} is not in [project.scripts] {sorted(scripts)}"
    module, _, attr = scripts[script].partition(":")
    assert (
        getattr(importlib.import_module(module), attr)
        is importlib.import_module("services.cli").main
    )
    cmd = [json.loads(args) for ins, args in final if ins == "CMD"][-1]
    assert cmd == ["serve", "api"]
    assert build_parser().parse_args(cmd).service == "api"


def test_dockerfile_builds_a_slim_non_root_production_image() -> None:
    instructions = dockerfile_instructions()
    final = final_stage()
    assert final[0][1].split()[0] == "python:3.11-slim"
    users = [args for ins, args in final if ins == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(args for ins, args in instructions if ins == "RUN")
    assert re.search(r"pip install (--no-deps )?\.(\s|$)", runs), "the project is not installed"
    assert "[dev]" not in DOCKERFILE.read_text()
    copied = " ".join(args for ins, args in instructions if ins == "COPY")
    packages = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in ["pyproject.toml", *packages["include"]]:
        assert pattern.rstrip("*") in copied, f"the build does not copy {pattern}"


def test_grafana_is_provisioned_with_the_dashboards_and_the_compose_prometheus(
    services: dict[str, Any],
) -> None:
    """`docker compose up` brings the dashboard up by itself: Grafana mounts the
    provisioning folder, the dashboard provider reads the folder the dashboards are mounted
    at, and the datasource every panel names is the compose Prometheus."""
    grafana = services["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        source, target, *_ = str(volume).split(":")
        mounts[source] = target
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    grafana_dir = ROOT / "deploy" / "grafana"
    providers = yaml.safe_load((grafana_dir / "provisioning/dashboards/wims.yml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == [
        mounts["./deploy/grafana/dashboards"]
    ]
    sources = yaml.safe_load((grafana_dir / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services
    assert "prometheus" in grafana["depends_on"]
    dashboards = sorted((grafana_dir / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            uids = {panel["datasource"]["uid"]} | {t["datasource"]["uid"] for t in panel["targets"]}
            assert uids == {source["uid"]}, (path.name, panel["title"])
