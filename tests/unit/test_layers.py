"""The code base's layering (docs/architecture.md, "Code layout"), enforced.

`lint-imports` checks the contracts in pyproject.toml's `[tool.importlinter]`: `shared/` in
layers (persistence over infrastructure and the domain, all over contracts), `shared/`
importing no service, no service importing another, and a domain free of the database,
the broker and the web frameworks, and every service's core as free (and of its own service's
adapters). A new import that breaks one fails this test with the
offending import chain.
"""

import shutil
import subprocess
import sys
from pathlib import Path

from shared.infrastructure.settings import PROJECT_ROOT


def test_imports_only_go_downwards() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint, "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
