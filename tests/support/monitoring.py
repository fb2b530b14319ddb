"""What the operators' monitoring (deploy/prometheus/rules.yml, deploy/grafana/dashboards)
asks of the services: the metric names its expressions use."""

import json
import re
from pathlib import Path

import yaml

from shared.infrastructure.settings import PROJECT_ROOT

RULES = PROJECT_ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARDS = PROJECT_ROOT / "deploy" / "grafana" / "dashboards"
# Series Prometheus makes itself, not a service.
PROMETHEUS_OWN = {"up"}

_SUFFIXES = ("_bucket", "_sum", "_count")


def rule_expressions() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    exprs = []
    for path in sorted(Path(DASHBOARDS).glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel["targets"]]
    return exprs


def metric_names(expressions: list[str]) -> set[str]:
    """The wims_* series an expression reads (a histogram's _bucket/_sum/_count as the
    histogram's own name), and Prometheus's own ``up``."""
    names = set()
    for expr in expressions:
        for name in re.findall(r"\b(wims_[a-z0-9_]+|up)\b", expr):
            for suffix in _SUFFIXES:
                if name.endswith(suffix):
                    name = name.removesuffix(suffix)
            names.add(name)
    return names


def exported_names(metrics_text: str) -> set[str]:
    """Every metric family a /metrics page declares (# HELP), samples or not."""
    return {line.split()[2] for line in metrics_text.splitlines() if line.startswith("# HELP ")}
