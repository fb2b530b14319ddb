"""``make bench``: run every benchmark under bench/ and print one table.

Each benchmark is a module ``bench.<name>`` that prints its figures and ends with one JSON
line: a list of {"name", "value", "unit", "baseline", "ratio", "target"}. This runner runs
them one at a time (they share two cores), collects those lines, prints the table and writes
the same rows to bench/results.json.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(
        p.name for p in BENCH_DIR.iterdir() if p.is_dir() and (p / "__main__.py").exists()
    )


def run_one(name: str) -> list[dict]:
    print(f"\n=== bench.{name} ===", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=BENCH_DIR.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    sys.stdout.write(proc.stdout)
    rows: list[dict] = []
    for line in reversed(proc.stdout.splitlines()):
        line = line.strip()
        if line.startswith("["):
            try:
                rows = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if proc.returncode != 0 or not rows:
        print(f"bench.{name} failed (exit {proc.returncode}) after {time.monotonic() - t0:.0f} s")
        return [
            {
                "name": f"{name}: failed",
                "value": None,
                "unit": "",
                "baseline": None,
                "ratio": None,
                "target": "",
            }
        ]
    return [{"bench": name, **row} for row in rows]


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str]) -> int:
    names = argv or discover()
    rows = [row for name in names for row in run_one(name)]
    header = ("figure", "value", "unit", "baseline", "ratio", "target")
    table = [header] + [
        (
            r["name"],
            fmt(r.get("value")),
            r.get("unit", ""),
            fmt(r.get("baseline")),
            fmt(r.get("ratio")),
            str(r.get("target") or ""),
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    print()
    for i, row in enumerate(table):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    (BENCH_DIR / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwritten to {BENCH_DIR / 'results.json'}")
    return 0 if all(r.get("value") is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
