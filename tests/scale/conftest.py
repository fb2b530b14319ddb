"""The scale test's stack: the session's Kafka and PostgreSQL, and every service started by
`wims up --scale` (two processes of each stream worker and of ingest)."""

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (  # noqa: F401  (the hook adds each process's log to a failure)
    RunningStack,
    pytest_runtest_makereport,
    services_up,
)
from tests.support.stack import Stack

SCALE = "maasp=2,integrity=2,tasks=2,ingest=2"


@pytest.fixture(scope="module")
def running_stack(stack: Stack) -> Iterator[RunningStack]:
    with services_up(stack, "--scale", SCALE) as rs:
        yield rs
