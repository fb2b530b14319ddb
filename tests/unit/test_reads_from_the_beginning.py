"""Every reader that seeks to a topic's beginning also resets to it.

aiokafka's ``assign()`` starts resetting each partition's position by the consumer's
``auto_offset_reset`` (``latest`` unless told); a ``seek_to_beginning`` right after can be
overtaken by that reset, and the read then starts at the end and finds nothing (seen in CI:
two dead-letter replay tests read an empty topic). A consumer built with
``auto_offset_reset="earliest"`` resets to the beginning either way."""

import ast
from pathlib import Path

from shared.infrastructure.settings import PROJECT_ROOT


def _readers_without_earliest(path: Path, root: Path = PROJECT_ROOT) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        calls = [n for n in ast.walk(func) if isinstance(n, ast.Call)]
        seeks = any(
            isinstance(c.func, ast.Attribute) and c.func.attr == "seek_to_beginning" for c in calls
        )
        for c in calls:
            name = getattr(c.func, "id", getattr(c.func, "attr", None))
            if name != "AIOKafkaConsumer" or not seeks:
                continue
            reset = {
                k.arg: k.value.value for k in c.keywords if isinstance(k.value, ast.Constant)
            }.get("auto_offset_reset")
            if reset != "earliest":
                found.append(f"{path.relative_to(root)}:{c.lineno}")
    return found


def test_every_reader_from_the_beginning_resets_to_the_earliest() -> None:
    files = [
        p
        for folder in ("services", "shared", "tests", "bench", "tools")
        for p in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    offenders = [where for p in files for where in _readers_without_earliest(p)]
    assert offenders == []


def test_the_check_finds_a_reader_left_at_latest(tmp_path: Path) -> None:
    sample = tmp_path / "reader.py"
    sample.write_text(
        "async def read(s):\n"
        "    c = AIOKafkaConsumer(bootstrap_servers=s)\n"
        "    await c.seek_to_beginning()\n"
    )
    assert _readers_without_earliest(sample, tmp_path) == ["reader.py:2"]
