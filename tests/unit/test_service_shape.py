"""Every service has the one inner shape (docs/architecture.md, "Inside a service"): its entry
point, its pure core, its store and its metrics in files of the same names, and its SQL in
its store only. (That each core imports no adapter is an import contract: test_layers.py.)"""

import ast
import re
from pathlib import Path

import pytest

from shared.infrastructure.settings import PROJECT_ROOT

SERVICES = PROJECT_ROOT / "services"
STREAM = ("maasp", "integrity", "tasks")
HTTP = ("ingest", "api")
# A statement in a string: the start of a query or a change (a docstring mentioning COPY is
# no statement; docstrings are skipped).
SQL = re.compile(r"^\s*(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|COPY\s+\w+|WITH\s)")


@pytest.mark.parametrize("service", STREAM + HTTP)
def test_every_service_has_the_named_parts(service: str) -> None:
    entry = "worker.py" if service in STREAM else "app.py"
    present = {p.name for p in (SERVICES / service).iterdir()}
    assert {entry, "core.py", "store.py", "metrics.py"} <= present


def _statements(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL.match(node.value)
    ]


@pytest.mark.parametrize("service", STREAM + HTTP)
def test_sql_is_written_in_the_store_only(service: str) -> None:
    outside = [
        where
        for path in sorted((SERVICES / service).rglob("*.py"))
        if path.name != "store.py"
        for where in _statements(path)
    ]
    assert outside == [], "SQL outside store.py"


def test_the_sql_check_finds_a_statement() -> None:
    """The check above can fail: it sees a statement, and not a docstring."""
    path = PROJECT_ROOT / "services" / "api" / "store.py"
    assert _statements(path), "store.py's statements are found"
