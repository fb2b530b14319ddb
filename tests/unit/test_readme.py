"""The README is the front door: it must name every setting the code reads."""

import re

from shared.infrastructure.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"WIMS_[A-Z0-9_]+", README))
    # "`WIMS_X` / `..._Y`" and "`WIMS_API_PORT` … `WIMS_TASKS_PORT`" rows name families
    families = {"WIMS_LOGIN_MAX_FAILURES_PER_ADDRESS": "..._PER_ADDRESS"}
    ports = {f"WIMS_{n}_PORT" for n in ("API", "INGEST", "MAASP", "INTEGRITY", "TASKS")}
    missing = [
        f"WIMS_{name.upper()}"
        for name in Settings.model_fields
        if f"WIMS_{name.upper()}" not in documented | ports
        and families.get(f"WIMS_{name.upper()}", "\\0") not in README
    ]
    assert missing == [], f"settings missing from the README's configuration table: {missing}"


def test_the_readme_names_no_setting_that_does_not_exist() -> None:
    known = {f"WIMS_{name.upper()}" for name in Settings.model_fields}
    # variables of the deploy scripts and the test harness, not of the services
    outside = {
        "WIMS_CACHE_DIR",
        "WIMS_PG_BIN",
        "WIMS_PG_FAST",
        "WIMS_KAFKA_HEAP",
        "WIMS_TEST_PORT_OFFSET",
        "WIMS_TEST_KEEP_LOGS",
        "WIMS_SCREENSHOT_DIR",
        "WIMS_ADMIN_PASSWORD",
    }
    unknown = set(re.findall(r"WIMS_[A-Z0-9_]*[A-Z0-9]", README)) - known - outside
    assert unknown == set(), f"the README names settings the code does not have: {unknown}"
