"""Every benchmark under bench/ imports: a rename elsewhere (a moved function, a renamed
module) breaks `make bench` at its first line, and nothing else in the suite runs it."""

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(p.parent.name for p in BENCH.glob("*/__main__.py"))


def test_every_benchmark_is_found() -> None:
    assert {"api", "ingest", "maasp", "scale", "storage"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}.__main__")
    assert callable(module.main)
