"""The operators' alert rules and dashboard are valid and do what they say:
`promtool check rules`, `promtool test rules` (each rule fires when it should and stays
quiet when it should not), every dashboard query is valid PromQL, and every metric either
names is one the services define. (That a running stack exports each of them is checked by
tests/e2e/test_pipeline.py.)"""

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.support.monitoring import (
    PROMETHEUS_OWN,
    RULES,
    dashboard_expressions,
    metric_names,
    rule_expressions,
)

SERVICE_METRICS = (
    "services.api.metrics",
    "services.ingest.metrics",
    "services.maasp.metrics",
    "services.integrity.metrics",
    "services.tasks.metrics",
    "shared.contracts.dead_letters",
    "shared.infrastructure.retry",
    "shared.infrastructure.kafka",
    "shared.infrastructure.observability",
)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (.ci/run does)")
    return found


def run(*args: str, cwd: Path = RULES.parent) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_alert_rules_are_valid() -> None:
    out = run(promtool(), "check", "rules", "rules.yml")
    assert "SUCCESS: 11 rules found" in out


def test_each_alert_rule_fires_when_it_should_and_only_then() -> None:
    assert "SUCCESS" in run(promtool(), "test", "rules", "rules_test.yml")


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses a recording rule's expression: the dashboard's queries as rules.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"wims:dashboard:q{i}", "expr": expr}
                    for i, expr in enumerate(dashboard_expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    assert "SUCCESS" in run(promtool(), "check", "rules", str(path), cwd=tmp_path)


def test_every_metric_the_monitoring_reads_is_defined_by_a_service() -> None:
    for module in SERVICE_METRICS:
        importlib.import_module(module)
    defined = {
        name for metric in REGISTRY.collect() for name in (metric.name, f"{metric.name}_total")
    }
    wanted = metric_names(rule_expressions() + dashboard_expressions()) - PROMETHEUS_OWN
    assert wanted, "no metric found in the rules and dashboards"
    assert wanted <= defined, f"not defined by any service: {sorted(wanted - defined)}"
