"""Deviation survey and derived critical points through the real API on the real database
and Kafka: upload and checks, proposals, acceptance, manual override, auto-accept."""

from typing import Any

import pytest

from shared.contracts import events as ev
from shared.contracts import topics
from shared.domain.maasp import CriticalPoint, maasp
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    KafkaTail,
    Users,
    _run_app,
    api_fixture,
    users_fixture,
)
from tests.support import worked_example as wx

V1 = "/api/v1"


def _client(api: Api, headers: dict[str, str]) -> tuple[Any, Any]:
    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await api.client.post(f"{V1}{path}", json=body, headers=headers)
        assert r.status_code == 201, (path, r.status_code, r.text)
        return r.json()

    async def put(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await api.client.put(f"{V1}{path}", json=body, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    return post, put


async def _well(api: Api, headers: dict[str, str], name: str = "S-1") -> int:
    r = await api.client.post(
        f"{V1}/wells",
        json={
            "name": name,
            "field": "F",
            "type": "oil_producer",
            "location": "platform",
            "measured_depth": 3000,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_survey_upload_checks_and_tvd(api: Api, users: Users) -> None:
    eng, viewer = users.headers["engineer"], users.headers["viewer"]
    w = await _well(api, eng)
    url = f"{V1}/wells/{w}/survey"
    # without a survey the well is vertical
    assert (await api.client.get(url, headers=viewer)).json()["stations"] == []
    stations = [
        {"md_m": 0, "inclination_deg": 0, "azimuth_deg": 0},
        {"md_m": 1000, "inclination_deg": 0, "azimuth_deg": 0},
        {"md_m": 2000, "inclination_deg": 60, "azimuth_deg": 90},
    ]
    assert (
        await api.client.put(url, json={"stations": stations}, headers=viewer)
    ).status_code == 403
    r = await api.client.put(url, json={"stations": stations}, headers=eng)
    assert r.status_code == 200, r.text
    json_tvds = [s["tvd_m"] for s in r.json()["stations"]]
    assert json_tvds[1] == pytest.approx(1000) and 1000 < json_tvds[2] < 2000
    r = await api.client.get(url, headers=viewer)
    assert [s["md_m"] for s in r.json()["stations"]] == [0, 1000, 2000]
    # the same survey as CSV (aliases in the header) gives the same TVDs
    csv = "md,inc,azi\n0,0,0\n1000,0,0\n2000,60,90\n"
    r = await api.client.put(f"{url}/csv", content=csv, headers={**eng, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert [s["tvd_m"] for s in r.json()["stations"]] == pytest.approx(json_tvds)
    # a bad station: 422 naming the station index and the field; nothing replaced
    bad = [stations[0], {**stations[1], "md_m": 1500}, {**stations[2], "md_m": 1500}]
    r = await api.client.put(url, json={"stations": bad}, headers=eng)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stations.2.md_m"
    r = await api.client.put(
        url, json={"stations": [stations[0], {**stations[1], "inclination_deg": 181}]}, headers=eng
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stations.1.inclination_deg"
    r = await api.client.put(
        f"{url}/csv",
        content="md_m,inclination_deg,azimuth_deg\n0,0,0\n5,x,0\n",
        headers={**eng, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stations.1.inclination_deg"
    r = await api.client.put(url, json={"stations": [{**stations[2], "md_m": 3500}]}, headers=eng)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stations.0.md_m"
    r = await api.client.get(url, headers=viewer)
    assert [s["md_m"] for s in r.json()["stations"]] == [0, 1000, 2000]
    # a manual critical point entered in MD only gets its TVD from the survey
    casing = await api.client.post(
        f"{V1}/wells/{w}/casing-strings",
        json={
            "name": "pc",
            "casing_type": "production",
            "outer_diameter_in": 9.625,
            "inner_diameter_in": 8.681,
            "top_md": 0,
            "bottom_md": 2900,
        },
        headers=eng,
    )
    tubing = await api.client.post(
        f"{V1}/wells/{w}/tubing-strings",
        json={
            "name": "t",
            "outer_diameter_in": 4.5,
            "inner_diameter_in": 3.958,
            "top_md": 0,
            "bottom_md": 2800,
        },
        headers=eng,
    )
    ann = await api.client.post(
        f"{V1}/wells/{w}/annuli",
        json={
            "name": "A",
            "inner_tubing_string_id": tubing.json()["id"],
            "outer_casing_string_id": casing.json()["id"],
            "fluid_gradient_bar_per_m": 0.1,
        },
        headers=eng,
    )
    r = await api.client.post(
        f"{V1}/annuli/{ann.json()['id']}/critical-points",
        json={"label": "shoe", "point_type": "shoe", "depth_md": 2000, "pressure_limit_bar": 400},
        headers=eng,
    )
    assert r.status_code == 201 and r.json()["tvd_m"] == pytest.approx(json_tvds[2])
    assert r.json()["origin"] == "manual"
    assert (await api.client.delete(url, headers=eng)).status_code == 403
    assert (await api.client.delete(url, headers=users.headers["admin"])).status_code == 204


async def test_accepting_derived_points_publishes_them_and_manual_points_override(
    api: Api, users: Users
) -> None:
    eng, viewer = users.headers["engineer"], users.headers["viewer"]
    ids = await wx.build(*_client(api, eng), name="2/8-A-2A")
    r = await api.client.get(f"{V1}/annuli/{ids['A']}/derived-critical-points", headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    kinds = {p["kind"]: p for p in body["points"]}
    assert set(kinds) == {
        "tubing_collapse_at_packer",
        "packer_rating",
        "casing_burst_at_packer",
        "casing_burst_at_wellhead",
        "wellhead_rating",
        "tree_rating",
    }
    assert all(p["status"] == "proposed" for p in body["points"])
    collapse = kinds["tubing_collapse_at_packer"]
    assert collapse["tvd_m"] == pytest.approx(wx.PACKER_TVD, abs=1e-6)  # from the survey
    assert collapse["depth_md"] > collapse["tvd_m"]
    assert collapse["allowable_surface_bar"] == pytest.approx(wx.A_MAASP_BAR, abs=0.07)
    assert collapse["formula"] and collapse["inputs"]["collapse_limit_bar"] > 0
    assert "ISO/TS 16530-2" in collapse["source"]
    # proposals are not points: the annulus has none until an engineer accepts
    r = await api.client.get(f"{V1}/annuli/{ids['A']}/critical-points", headers=viewer)
    assert r.json() == []
    accept = f"{V1}/annuli/{ids['A']}/derived-critical-points/accept"
    assert (await api.client.post(accept, headers=viewer)).status_code == 403
    r = await api.client.post(accept, json={"kinds": ["nonsense"]}, headers=eng)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kinds"

    tail = await KafkaTail(api.settings, topics.ANNULUS_CONFIG.name).start()
    try:
        r = await api.client.post(accept, headers=eng)
        assert r.status_code == 200, r.text
        assert len(r.json()["accepted"]) == 6
        cfg: ev.AnnulusConfig = await tail.wait_for(
            lambda k, v: v.annulus_id == ids["A"] and len(v.critical_points) == 6, timeout_s=10
        )
    finally:
        await tail.stop()
    # what the MAASP worker receives gives the published MAASP
    points = [
        CriticalPoint(p.id, p.label, p.tvd_m, p.pressure_limit_bar) for p in cfg.critical_points
    ]
    out = maasp(points, cfg.fluid_gradient_bar_per_m, cfg.safety_factor)
    assert out.maasp_bar == pytest.approx(wx.A_MAASP_BAR, abs=0.07)
    assert out.limiting_point is not None and out.limiting_point.name == "tubing collapse at packer"
    r = await api.client.get(f"{V1}/annuli/{ids['A']}/derived-critical-points", headers=viewer)
    assert {p["status"] for p in r.json()["points"]} == {"accepted"}

    # a manual packer point at the packer's depth replaces the derived one
    packer = kinds["packer_rating"]
    r = await api.client.post(
        f"{V1}/annuli/{ids['A']}/critical-points",
        json={
            "label": "packer (tested)",
            "point_type": "packer",
            "depth_md": packer["depth_md"],
            "pressure_limit_bar": 500,
        },
        headers=eng,
    )
    assert r.status_code == 201, r.text
    manual_id = r.json()["id"]
    rows = (await api.client.get(f"{V1}/annuli/{ids['A']}/critical-points", headers=viewer)).json()
    assert [p["id"] for p in rows if p["point_type"] == "packer"] == [manual_id]
    r = await api.client.post(accept, headers=eng)
    assert r.json()["overridden"] == ["packer_rating"] and len(r.json()["accepted"]) == 5
    r = await api.client.get(f"{V1}/annuli/{ids['A']}/derived-critical-points", headers=viewer)
    by_kind = {p["kind"]: p for p in r.json()["points"]}
    assert by_kind["packer_rating"]["status"] == "overridden"
    assert by_kind["packer_rating"]["critical_point_id"] == manual_id

    # the C annulus: published 1782 psi; the missing formation test is named
    r = await api.client.get(f"{V1}/annuli/{ids['C']}/derived-critical-points", headers=viewer)
    body = r.json()
    assert body["missing"] == {
        "formation_strength": ["casing.formation_strength_gradient_bar_per_m"]
    }
    assert min(p["allowable_surface_bar"] for p in body["points"]) == pytest.approx(
        wx.C_MAASP_BAR, abs=0.07
    )


async def test_auto_accept_derives_on_architecture_change(api: Api, users: Users) -> None:
    settings = api.settings.model_copy(update={"auto_accept_derived_points": True})
    app = _run_app(settings)
    auto = await anext(app)
    try:
        eng = users.headers["engineer"]
        ids = await wx.build(*_client(auto, eng), name="AUTO-1")
        url = f"{V1}/annuli/{ids['C']}/critical-points"
        rows = (await auto.client.get(url, headers=eng)).json()
        assert rows and {p["origin"] for p in rows} == {"derived"}
        burst = next(p for p in rows if p["derivation"]["kind"] == "casing_burst_at_shoe")
        # a weaker (worn) 20" casing is taken up at once
        r = await auto.client.patch(
            f"{V1}/casing-strings/{ids['c20']}", json={"derating_percent": 50.0}, headers=eng
        )
        assert r.status_code == 200, r.text
        rows = (await auto.client.get(url, headers=eng)).json()
        after = next(p for p in rows if p["derivation"]["kind"] == "casing_burst_at_shoe")
        drop = wx.psi_to_bar(1918) / 2
        assert after["pressure_limit_bar"] == pytest.approx(burst["pressure_limit_bar"] - drop)
    finally:
        await app.aclose()
