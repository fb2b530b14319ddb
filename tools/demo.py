"""``wims demo``: a realistic sample field seeded through the public API, and incidents.

The field plan is pure data (``sample_field``: the well architecture in demo_field.json,
varied per well by a seeded random draw), so its realism is unit-tested without a
stack. Seeding goes through the API only (as an engineer would), so the outbox carries every
config to the stream processors exactly as in production.

Architecture of every well (metres, bar):

    conductor 30" 0-150 | surface 20" 0-800 | intermediate 13 3/8" 0-2000 |
    production 9 5/8" 0-(MD-100) | tubing 4 1/2" 0-(MD-300), packer near its bottom
    A annulus: tubing x production casing   (brine, 0.101 bar/m)
    B annulus: production x intermediate    (mud, 0.118 bar/m)
    C annulus: intermediate x surface       (mud, 0.118 bar/m)

Critical points follow the ISO/TS 16530-2 list in docs/domain.md ("MAASP"), with ratings of common casing
and a formation strength at each shoe; MAASP comes out near 60-210 bar (A, lower in
the deeper wells), 35-60 bar (B) and 8-18 bar (C), which is typical.
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.contracts.enums import WellLocation, WellType

BAR_PER_M_PER_SG = 0.0981  # hydrostatic gradient of fresh water, bar/m per specific gravity


@dataclass
class AnnulusPlan:
    name: str
    inner: str  # name of the inner string ("tubing" or a casing name)
    outer: str
    fluid_gradient_bar_per_m: float
    critical_points: list[dict[str, Any]]
    baseline_bar: float
    tag: str
    imposed_pressure: bool = False


@dataclass
class WellPlan:
    well: dict[str, Any]
    casing_strings: list[dict[str, Any]]
    tubing: dict[str, Any]
    cement_intervals: list[dict[str, Any]]  # with "casing" naming the cemented string
    annuli: list[AnnulusPlan]
    envelopes: dict[str, list[dict[str, Any]]]  # primary/secondary -> elements with "tests"
    incidents: list[str] = field(default_factory=list)


WELL_TYPES = [
    WellType.oil_producer,
    WellType.gas_producer,
    WellType.water_injector,
    WellType.gas_injector,
    WellType.observation,
]
# The scripted incidents, by well index: what the demo shows in its first minutes.
INCIDENTS = {2: "buildup", 6: "sap", 10: "sssv_fail"}


def _tests(
    rng: random.Random,
    now: datetime,
    interval_days: int,
    test_type: str,
    n: int = 3,
    due_soon: bool = False,
    overdue: bool = False,
) -> list[dict[str, Any]]:
    """Past tests, the latest placing the next due date where the demo wants it."""
    if overdue:
        last = now - timedelta(days=interval_days + rng.randint(5, 30))
    elif due_soon:
        last = now - timedelta(days=interval_days - rng.randint(3, 12))
    else:
        last = now - timedelta(days=rng.randint(10, max(11, interval_days // 2)))
    tests = []
    for i in range(n):
        performed = last - timedelta(days=interval_days * i)
        tests.append(
            {
                "test_type": test_type,
                "test_date": performed.isoformat(),
                "result": "pass",
                "pressure_applied_bar": 200.0 if test_type == "pressure" else None,
                "leak_rate": round(rng.uniform(0, 120), 1) if test_type == "inflow" else None,
                "leak_rate_unit": "cm3/min" if test_type == "inflow" else None,
                "duration_min": 15.0,
            }
        )
    return list(reversed(tests))


FIELD_DATA = Path(__file__).with_name("demo_field.json")


def _fill(template: Any, values: dict[str, Any]) -> Any:
    """A copy of the JSON ``template`` with each ``"$name"`` string replaced by ``values[name]``."""
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str) and template.startswith("$"):
        return values[template[1:]]
    return template


def _well_values(
    md: float, tvd: float, fg_int: float, fg_surf: float, collapse_bar: float
) -> dict[str, Any]:
    """The depths and limits of one well that the architecture's ``$names`` stand for."""
    ratio = tvd / md
    prod_shoe = md - 100
    tubing_bottom = md - 300
    packer_md = tubing_bottom - 20
    int_shoe_tvd = round(2000 * ratio)
    return {
        "prod_shoe": prod_shoe,
        "prod_shoe_tvd": round(prod_shoe * ratio),
        "prod_cement_top": prod_shoe - 900,
        "tubing_bottom": tubing_bottom,
        "packer_md": packer_md,
        "packer_tvd": round(packer_md * ratio),
        "int_shoe_tvd": int_shoe_tvd,
        "wellhead_rating": 345.0,  # 5,000 psi
        "tubing_collapse_limit": round(collapse_bar * 0.95, 1),
        "prod_burst_limit": round(548.0 * 0.9, 1),
        "int_shoe_limit": round(fg_int * BAR_PER_M_PER_SG * int_shoe_tvd, 1),
        "surf_shoe_limit": round(fg_surf * BAR_PER_M_PER_SG * 790.0, 1),
    }


def sample_field(n_wells: int = 20, seed: int = 7, now: datetime | None = None) -> list[WellPlan]:
    """``n_wells`` wells of the architecture in demo_field.json, their depths, formation
    strengths, baselines and test dates drawn from ``seed`` (the same field for a seed)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    arch = json.loads(FIELD_DATA.read_text())
    plans: list[WellPlan] = []
    for i in range(n_wells):
        md = float(rng.randrange(3000, 4600, 50))
        tvd = round(md * rng.uniform(0.82, 0.95), 0)
        well_type = WELL_TYPES[i % len(WELL_TYPES)] if i % 4 else WellType.oil_producer
        name = f"NS-{i + 1:02d}"
        location = WellLocation.subsea if i % 7 == 3 else WellLocation.platform
        fg_int = rng.uniform(1.55, 1.75)  # formation strength at the intermediate shoe, sg
        fg_surf = rng.uniform(1.45, 1.6)
        values = _well_values(md, tvd, fg_int, fg_surf, arch["tubing"]["collapse_limit_bar"])
        annuli = [
            AnnulusPlan(
                a["name"],
                a["inner"],
                a["outer"],
                a["fluid_gradient_bar_per_m"],
                _fill(a["critical_points"], values),
                rng.uniform(*a["baseline_bar"]),
                f"{name}/ANN-{a['name']}/PT",
                imposed_pressure=a["name"] == "A"
                and well_type == WellType.oil_producer
                and i % 8 == 5,
            )
            for a in arch["annuli"]
        ]
        due_soon = i % 5 == 1
        overdue = i % 9 == 4
        envelopes: dict[str, list[dict[str, Any]]] = {}
        for envelope, members in arch["envelopes"].items():
            envelopes[envelope] = []
            for member in members:
                element = _fill({k: v for k, v in member.items() if k != "tests"}, values)
                plan = member.get("tests")
                if plan is not None:
                    scheduled = plan.get("scheduled", False)
                    element["tests"] = _tests(
                        rng,
                        now,
                        plan["interval_days"],
                        plan["test_type"],
                        n=plan["n"],
                        due_soon=due_soon and scheduled,
                        overdue=overdue and scheduled,
                    )
                envelopes[envelope].append(element)
        spud = now - timedelta(days=rng.randint(400, 6000))
        well = {
            "name": name,
            "field": "North Sea Demo",
            "type": well_type.value,
            "location": location.value,
            "measured_depth": md,
            "true_vertical_depth": tvd,
            "spud_date": spud.isoformat(),
            "country": "Norway" if i % 3 else "United Kingdom",
            "completion_date": (spud + timedelta(days=rng.randint(60, 180))).isoformat(),
        }
        incidents = [INCIDENTS[i]] if i in INCIDENTS else []
        plans.append(
            WellPlan(
                well,
                _fill(arch["casing_strings"], values),
                _fill(arch["tubing"], values),
                _fill(arch["cement_intervals"], values),
                annuli,
                envelopes,
                incidents,
            )
        )
    return plans


# --- seeding through the API -----------------------------------------------------------------


class ApiClient:
    """The few calls the demo makes, with errors that say which call failed and why."""

    def __init__(self, base_url: str, token: str) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    @classmethod
    def login(cls, base_url: str, email: str, password: str) -> "ApiClient":
        import httpx

        r = httpx.post(
            base_url.rstrip("/") + "/api/v1/auth/token",
            data={"username": email, "password": password},
            timeout=30,
        )
        if r.status_code != 200:
            raise RuntimeError(f"login as {email} failed: {r.status_code} {r.text}")
        return cls(base_url, r.json()["access_token"])

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json={k: v for k, v in body.items() if v is not None})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} failed: {r.status_code} {r.text}")
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} failed: {r.status_code} {r.text}")
        return r.json()


@dataclass
class SeededWell:
    well_id: int
    name: str
    annuli: dict[str, int]  # name -> id
    elements: dict[str, int]  # name -> id
    incidents: list[str]


def seed_well(api: ApiClient, plan: WellPlan) -> SeededWell:
    well = api.post("/wells", plan.well)
    wid = well["id"]
    strings: dict[str, tuple[str, int]] = {}
    for casing in plan.casing_strings:
        strings[casing["name"]] = ("casing", api.post(f"/wells/{wid}/casing-strings", casing)["id"])
    strings["tubing"] = ("tubing", api.post(f"/wells/{wid}/tubing-strings", plan.tubing)["id"])
    for cement in plan.cement_intervals:
        body = {k: v for k, v in cement.items() if k != "casing"}
        body["casing_id"] = strings[cement["casing"]][1]
        api.post(f"/wells/{wid}/cement-intervals", body)
    annuli: dict[str, int] = {}
    for a in plan.annuli:
        kind, inner_id = strings[a.inner]
        body = {
            "name": a.name,
            "inner_tubing_string_id": inner_id if kind == "tubing" else None,
            "inner_casing_string_id": inner_id if kind == "casing" else None,
            "outer_casing_string_id": strings[a.outer][1],
            "fluid_type": "brine",  # packer fluid and the brine left behind casing
            "fluid_gradient_bar_per_m": a.fluid_gradient_bar_per_m,
            "imposed_pressure": a.imposed_pressure,
        }
        aid = api.post(f"/wells/{wid}/annuli", body)["id"]
        annuli[a.name] = aid
        for point in a.critical_points:
            api.post(f"/annuli/{aid}/critical-points", point)
        api.post("/scada-tags", {"tag": a.tag, "annulus_id": aid})
    elements: dict[str, int] = {}
    for envelope_type, members in plan.envelopes.items():
        env = api.post(
            f"/wells/{wid}/barrier-envelopes",
            {"type": envelope_type, "name": f"{envelope_type} well barrier"},
        )
        for member in members:
            body = {k: v for k, v in member.items() if k != "tests"}
            eid = api.post(f"/barrier-envelopes/{env['id']}/barrier-elements", body)["id"]
            elements[member["name"]] = eid
            for test in member.get("tests", []):
                api.post(f"/barrier-elements/{eid}/tests", test)
    return SeededWell(wid, plan.well["name"], annuli, elements, plan.incidents)


def seed_field(api: ApiClient, plans: list[WellPlan], log: Any = print) -> list[SeededWell]:
    """Seed every well not there yet (by name); a second run adds nothing."""
    existing = {w["name"]: w["id"] for w in api.get("/wells", limit=500)}
    seeded = []
    for n, plan in enumerate(plans, 1):
        if plan.well["name"] in existing:
            log(f"  [{n}/{len(plans)}] {plan.well['name']}: already there")
            continue
        seeded.append(seed_well(api, plan))
        log(f"  [{n}/{len(plans)}] {plan.well['name']}: seeded ({plan.well['type']})")
    return seeded


# --- the demo command ----------------------------------------------------------------------------

DEMO_ADMIN = "demo-admin@wims.example"
DEMO_PASSWORD = "wims-demo-password"  # a local demo on loopback; say so when printing it


def run_demo(settings: Any, args: Any, start_stack: Callable[[Any, Any], int]) -> int:
    """Start the stack (``start_stack``: the CLI's ``up``, handed in so this client does not
    import the CLI that imports it), seed the field, then run the SCADA simulator with the
    incidents."""
    import subprocess
    import sys
    import threading
    import time

    if start_stack(settings, args) != 0:
        return 1
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "create-admin",
            "--email",
            DEMO_ADMIN,
            "--password",
            DEMO_PASSWORD,
            "--name",
            "Demo admin",
        ],
        check=True,
    )
    api_url = f"http://{settings.bind_host}:{settings.api_port}"
    ingest_url = f"http://{settings.bind_host}:{settings.ingest_port}"
    api = ApiClient.login(api_url, DEMO_ADMIN, DEMO_PASSWORD)
    print(f"\nseeding {args.wells} wells through {api_url} ...")
    if not seed_field(api, sample_field(args.wells, seed=args.seed)):
        # The simulator replays the last hours of event time; readings older than what an
        # earlier demo stored are judged late (no alerts), which is right but shows little.
        print(
            "  note: the field is from an earlier demo run; for fresh incidents start over with"
            " `make clean && make demo`"
        )

    wells = {w["name"]: w["id"] for w in api.get("/wells", limit=500)}
    plans = {p.well["name"]: p for p in sample_field(args.wells, seed=args.seed)}
    # The SSSV's well was configured moments ago, during seeding: within its settling time
    # (WIMS_CONFIG_SETTLING_S) its colour changes raise no alert, so the incident waits
    # that out, as a real failure would come long after the well was set up.
    sssv_after = max(args.sssv_after, settings.config_settling_s + 15)

    scenarios: list[str] = []
    sssv_element: int | None = None
    for name, plan in plans.items():
        wid = wells[name]
        annuli = {a["name"]: a["id"] for a in api.get(f"/wells/{wid}/annuli")}
        if "buildup" in plan.incidents:
            scenarios.append(f"buildup:{annuli['A']}")
            print(f"  incident: slow build-up past MAASP on {name} annulus A")
        if "sap" in plan.incidents:
            scenarios.append(f"sap:{annuli['B']}")
            print(f"  incident: bleed-down then build-up (SAP) on {name} annulus B")
        if "sssv_fail" in plan.incidents:
            for env in api.get(f"/wells/{wid}/barrier-envelopes"):
                for element in api.get(f"/barrier-envelopes/{env['id']}/barrier-elements"):
                    if element["element_type"] == "sssv":
                        sssv_element = element["id"]
            print(f"  incident: failing SSSV inflow test on {name} after {sssv_after:.0f} s")

    key = api.post("/api-keys", {"name": "demo SCADA historian", "source": "demo-scada"})
    secret = key["secret"]

    def fail_sssv() -> None:
        time.sleep(sssv_after)
        if sssv_element is None:
            return
        from datetime import UTC, datetime

        api.post(
            f"/barrier-elements/{sssv_element}/tests",
            {
                "test_type": "inflow",
                "test_date": datetime.now(UTC).isoformat(),
                "result": "fail",
                "leak_rate": 0.9,
                "leak_rate_unit": "m3/min",
                "comments": "demo: gas leak above the 0.425 m3/min (15 scf/min) acceptance",
            },
        )
        print("\n  recorded a FAILED SSSV inflow test (0.9 m3/min gas)", flush=True)

    threading.Thread(target=fail_sssv, daemon=True).start()
    print(
        f"\nWIMS demo is running. Log in as {DEMO_ADMIN} / {DEMO_PASSWORD} (local demo only).\n"
        f"  console (fleet board, live alerts, wells, tasks): {api_url}/\n"
        f"  TOKEN=$(curl -s -d 'username={DEMO_ADMIN}&password={DEMO_PASSWORD}' {api_url}/api/v1/auth/token | python3 -c 'import sys,json; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'  curl -N -H "Authorization: Bearer $TOKEN" {api_url}/api/v1/alerts/stream\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" {api_url}/api/v1/fleet | python3 -m json.tool\n'
        f"\nsimulating SCADA readings for {args.duration:.0f} s (Ctrl-C stops the simulator; `make down` the stack)\n",
        flush=True,
    )
    sim = [
        sys.executable,
        "-m",
        "services.cli",
        "simulate",
        "--ingest-url",
        ingest_url,
        "--api-key",
        secret,
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
        "--time-scale",
        str(args.time_scale),
        "--bad-share",
        "0.01",
    ]
    for scenario in scenarios:
        sim += ["--scenario", scenario]
    try:
        return subprocess.run(sim).returncode
    except KeyboardInterrupt:
        return 0
