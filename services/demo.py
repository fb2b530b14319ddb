"""``wims demo``: a realistic sample field seeded through the public API, and incidents.

The field plan is pure data (``sample_field``), so its realism is unit-tested without a
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

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.enums import ElementType, WellLocation, WellType

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
                "performed_at": performed.isoformat(),
                "result": "pass",
                "test_pressure_bar": 200.0 if test_type == "pressure" else None,
                "leak_rate": round(rng.uniform(0, 120), 1) if test_type == "inflow" else None,
                "leak_rate_unit": "cm3/min" if test_type == "inflow" else None,
                "duration_min": 15.0,
            }
        )
    return list(reversed(tests))


def sample_field(n_wells: int = 20, seed: int = 7, now: datetime | None = None) -> list[WellPlan]:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    plans: list[WellPlan] = []
    for i in range(n_wells):
        md = float(rng.randrange(3000, 4600, 50))
        tvd = round(md * rng.uniform(0.82, 0.95), 0)
        ratio = tvd / md
        well_type = WELL_TYPES[i % len(WELL_TYPES)] if i % 4 else WellType.oil_producer
        name = f"NS-{i + 1:02d}"
        location = WellLocation.subsea if i % 7 == 3 else WellLocation.platform
        prod_shoe = md - 100
        tubing_bottom = md - 300
        packer_md = tubing_bottom - 20
        casings = [
            {
                "name": "conductor",
                "casing_type": "conductor",
                "outer_diameter_in": 30.0,
                "inner_diameter_in": 28.0,
                "top_md": 0.0,
                "bottom_md": 150.0,
                "shoe_tvd": 150.0,
                "grade": "X52",
            },
            {
                "name": "surface",
                "casing_type": "surface",
                "outer_diameter_in": 20.0,
                "inner_diameter_in": 18.73,
                "top_md": 0.0,
                "bottom_md": 800.0,
                "shoe_tvd": 790.0,
                "grade": "K55",
                "burst_rating_bar": 146.0,
                "collapse_rating_bar": 60.0,
            },
            {
                "name": "intermediate",
                "casing_type": "intermediate",
                "outer_diameter_in": 13.375,
                "inner_diameter_in": 12.347,
                "top_md": 0.0,
                "bottom_md": 2000.0,
                "shoe_tvd": round(2000 * ratio),
                "grade": "L80",
                "burst_rating_bar": 348.0,
                "collapse_rating_bar": 181.0,
            },
            {
                "name": "production",
                "casing_type": "production",
                "outer_diameter_in": 9.625,
                "inner_diameter_in": 8.681,
                "top_md": 0.0,
                "bottom_md": prod_shoe,
                "shoe_tvd": round(prod_shoe * ratio),
                "grade": "L80",
                "burst_rating_bar": 548.0,
                "collapse_rating_bar": 326.0,
            },
        ]
        tubing = {
            "name": "tubing",
            "outer_diameter_in": 4.5,
            "inner_diameter_in": 3.958,
            "top_md": 0.0,
            "bottom_md": tubing_bottom,
            "packer_depth_md": packer_md,
            "grade": "13Cr80",
            "burst_rating_bar": 580.0,
            "collapse_rating_bar": 520.0,
        }
        cement = [
            {
                "casing": "surface",
                "top_md": 0.0,
                "bottom_md": 800.0,
                "verified_by": "returns to surface",
            },
            {
                "casing": "intermediate",
                "top_md": 1200.0,
                "bottom_md": 2000.0,
                "verified_by": "calculated",
            },
            {
                "casing": "production",
                "top_md": prod_shoe - 900,
                "bottom_md": prod_shoe,
                "verified_by": "CBL",
            },
        ]
        packer_tvd = round(packer_md * ratio)
        int_shoe_tvd = round(2000 * ratio)
        fg_int = rng.uniform(1.55, 1.75)  # formation strength at the intermediate shoe, sg
        fg_surf = rng.uniform(1.45, 1.6)
        wellhead_rating = 345.0  # 5,000 psi
        a_points = [
            {
                "name": "wellhead A section",
                "point_type": "wellhead",
                "depth_md": 0.0,
                "tvd_m": 0.0,
                "pressure_limit_bar": wellhead_rating,
            },
            {
                "name": "tubing collapse at packer",
                "point_type": "inner_string_collapse",
                "depth_md": packer_md,
                "tvd_m": packer_tvd,
                "pressure_limit_bar": round(tubing["collapse_rating_bar"] * 0.95, 1),
            },
            {
                "name": "production packer",
                "point_type": "packer",
                "depth_md": packer_md,
                "tvd_m": packer_tvd,
                "pressure_limit_bar": 690.0,
            },
            {
                "name": "production casing burst",
                "point_type": "outer_casing_burst",
                "depth_md": packer_md,
                "tvd_m": packer_tvd,
                "pressure_limit_bar": round(548.0 * 0.9, 1),
            },
        ]
        b_points = [
            {
                "name": "wellhead B section",
                "point_type": "wellhead",
                "depth_md": 0.0,
                "tvd_m": 0.0,
                "pressure_limit_bar": wellhead_rating,
            },
            {
                "name": "formation at intermediate shoe",
                "point_type": "shoe",
                "depth_md": 2000.0,
                "tvd_m": int_shoe_tvd,
                "pressure_limit_bar": round(fg_int * BAR_PER_M_PER_SG * int_shoe_tvd, 1),
            },
            {
                "name": "intermediate casing burst",
                "point_type": "outer_casing_burst",
                "depth_md": 2000.0,
                "tvd_m": int_shoe_tvd,
                "pressure_limit_bar": 348.0,
            },
        ]
        c_points = [
            {
                "name": "wellhead C section",
                "point_type": "wellhead",
                "depth_md": 0.0,
                "tvd_m": 0.0,
                "pressure_limit_bar": 207.0,
            },
            {
                "name": "formation at surface shoe",
                "point_type": "shoe",
                "depth_md": 800.0,
                "tvd_m": 790.0,
                "pressure_limit_bar": round(fg_surf * BAR_PER_M_PER_SG * 790.0, 1),
            },
            {
                "name": "surface casing burst",
                "point_type": "outer_casing_burst",
                "depth_md": 800.0,
                "tvd_m": 790.0,
                "pressure_limit_bar": 146.0,
            },
        ]
        annuli = [
            AnnulusPlan(
                "A",
                "tubing",
                "production",
                0.101,
                a_points,
                rng.uniform(15, 35),
                f"{name}/ANN-A/PT",
                imposed_pressure=well_type == WellType.oil_producer and i % 8 == 5,
            ),
            AnnulusPlan(
                "B",
                "production",
                "intermediate",
                0.118,
                b_points,
                rng.uniform(3, 9),
                f"{name}/ANN-B/PT",
            ),
            AnnulusPlan(
                "C",
                "intermediate",
                "surface",
                0.118,
                c_points,
                rng.uniform(0.5, 2.5),
                f"{name}/ANN-C/PT",
            ),
        ]
        due_soon = i % 5 == 1
        overdue = i % 9 == 4
        primary = [
            {
                "name": "SSSV",
                "element_type": ElementType.sssv.value,
                "status": "ok",
                "depth_md": 400.0,
                "tests": _tests(rng, now, 182, "inflow", due_soon=due_soon, overdue=overdue),
            },
            {"name": "production tubing", "element_type": ElementType.tubing.value, "status": "ok"},
            {
                "name": "production packer",
                "element_type": ElementType.packer.value,
                "status": "ok",
                "depth_md": packer_md,
            },
            {
                "name": "production casing below packer",
                "element_type": ElementType.casing.value,
                "status": "ok",
            },
            {
                "name": "production casing cement",
                "element_type": ElementType.cement.value,
                "status": "ok",
            },
        ]
        secondary = [
            {"name": "production casing", "element_type": ElementType.casing.value, "status": "ok"},
            {"name": "wellhead", "element_type": ElementType.wellhead.value, "status": "ok"},
            {
                "name": "tubing hanger seals",
                "element_type": ElementType.wellhead_seal.value,
                "status": "ok",
                "tests": _tests(rng, now, 365, "pressure", n=2),
            },
            {
                "name": "master valve",
                "element_type": ElementType.tree_valve.value,
                "status": "ok",
                "tests": _tests(rng, now, 182, "leak_rate"),
            },
            {
                "name": "A annulus valve",
                "element_type": ElementType.annulus_valve.value,
                "status": "ok",
                "tests": _tests(rng, now, 365, "functional", n=2),
            },
        ]
        well = {
            "name": name,
            "field": "North Sea Demo",
            "well_type": well_type.value,
            "location": location.value,
            "measured_depth": md,
            "true_vertical_depth": tvd,
            "spud_date": (now - timedelta(days=rng.randint(400, 6000))).isoformat(),
        }
        incidents = [INCIDENTS[i]] if i in INCIDENTS else []
        plans.append(
            WellPlan(
                well,
                casings,
                tubing,
                cement,
                annuli,
                {"primary": primary, "secondary": secondary},
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
        body["casing_string_id"] = strings[cement["casing"]][1]
        api.post(f"/wells/{wid}/cement-intervals", body)
    annuli: dict[str, int] = {}
    for a in plan.annuli:
        kind, inner_id = strings[a.inner]
        body = {
            "name": a.name,
            "inner_tubing_string_id": inner_id if kind == "tubing" else None,
            "inner_casing_string_id": inner_id if kind == "casing" else None,
            "outer_casing_string_id": strings[a.outer][1],
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
            {"envelope_type": envelope_type, "name": f"{envelope_type} well barrier"},
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
        log(f"  [{n}/{len(plans)}] {plan.well['name']}: seeded ({plan.well['well_type']})")
    return seeded


# --- the demo command ----------------------------------------------------------------------------

DEMO_ADMIN = "demo-admin@wims.example"
DEMO_PASSWORD = "wims-demo-password"  # a local demo on loopback; say so when printing it


def run_demo(settings: Any, args: Any) -> int:
    """Start the stack, seed the field, then run the SCADA simulator with the incidents."""
    import subprocess
    import sys
    import threading
    import time

    from services import cli

    if cli.cmd_up(settings, args) != 0:
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
                "performed_at": datetime.now(UTC).isoformat(),
                "result": "fail",
                "leak_rate": 0.9,
                "leak_rate_unit": "m3/min",
                "notes": "demo: gas leak above the 0.425 m3/min (15 scf/min) acceptance",
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
