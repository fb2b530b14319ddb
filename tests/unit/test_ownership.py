"""Every table declares the service that owns it, and only its owner writes it.

docs/architecture.md ("Table ownership") lists who reads what through which read path.
"""

import re
from pathlib import Path

from shared.infrastructure.settings import PROJECT_ROOT
from shared.persistence.models import OWNERS, Base

WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY)\s+(\w+)", re.IGNORECASE)
# The API's manual tasks and edits of any task (docs/architecture.md, "Table ownership").
SECOND_WRITERS = {("api", "task")}


def owners() -> dict[str, str]:
    return {m.local_table.name: m.class_.__owner__ for m in Base.registry.mappers}


def test_every_table_declares_a_service_that_owns_it() -> None:
    tables = owners()
    assert set(tables) == {t.name for t in Base.metadata.sorted_tables}
    assert {t: o for t, o in tables.items() if o not in OWNERS} == {}


def test_no_service_writes_a_table_another_service_owns() -> None:
    tables = owners()
    foreign = []
    for service in OWNERS:
        for path in sorted((PROJECT_ROOT / "services" / service).rglob("*.py")):
            for match in WRITE.finditer(Path(path).read_text()):
                table = match.group(1).lower()
                owner = tables.get(table)
                if owner not in (None, service) and (service, table) not in SECOND_WRITERS:
                    foreign.append(f"{path.relative_to(PROJECT_ROOT)} writes {table} ({owner}'s)")
    assert foreign == []
