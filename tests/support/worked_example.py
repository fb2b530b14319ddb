"""Well 2/8-A-2A ("Calculating MAASP and MOASP", 2009) built through the API, deviated.

The published sheet gives ratings with their safety factor applied (20" burst 1918 psi,
13-3/8" collapse 2670 psi, 9-5/8" production casing burst 7418 psi, 4-1/2" tubing collapse
6818 psi), the fluids as specific gravities (A 1.032, B 0.90, C 1.261, behind the 20" 1.00,
gas of 0.1 in the tubing) and the hydrostatic differences at the critical depths, not the
depths. The TVDs here are the ones those differences imply with those SGs (20" shoe, the
13-3/8" top of cement, the packer), and the tubing's minimum wellhead pressure (named, not
valued) is 20 psi; tests/unit/test_critical_points.py derives the published numbers from
the same inputs. The well is deviated (vertical to 500 m, built to 30° by 800 m, then a
tangent), so every depth is entered in MD and the API takes its TVD from the survey.

Predicted: A annulus MAASP 3710 psi (tubing collapse at the packer; burst 6975 psi), C
annulus 1782 psi (20" burst at its shoe). Safety factor 1: the ratings carry theirs.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from shared.domain.maasp import psi_to_bar
from shared.domain.survey import Station, minimum_curvature

SG = 0.0980665  # bar/m per unit of specific gravity
STATIONS = [Station(0, 0, 0), Station(500, 0, 0), Station(800, 30, 45), Station(4000, 30, 45)]
SHOE_20_TVD = psi_to_bar(136) / ((1.261 - 1.00) * SG)  # ≈ 366 m
TOC_13_TVD = psi_to_bar(669) / ((1.261 - 0.90) * SG)  # ≈ 1303 m
PACKER_TVD = psi_to_bar(443) / ((1.032 - 0.90) * SG)  # ≈ 2360 m
A_MAASP_BAR = psi_to_bar(3710)
A_BURST_BAR = psi_to_bar(6975)
C_MAASP_BAR = psi_to_bar(1782)


def md_at_tvd(tvd: float) -> float:
    """The MD at which the survey reaches ``tvd`` (bisection: TVD grows with MD here)."""
    path = minimum_curvature(STATIONS)
    lo, hi = 0.0, 4000.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if path.tvd_at(mid)[0] < tvd else (lo, mid)
    return (lo + hi) / 2


Post = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


async def build(post: Post, put: Post, name: str) -> dict[str, int]:
    """Creates the well, its survey, strings, cement and annuli A, B, C; no critical point.
    ``post``/``put`` take a path under /api/v1 and a JSON body and return the JSON answer."""
    well = await post(
        "/wells",
        {
            "name": name,
            "field": "2/8-A",
            "type": "oil_producer",
            "location": "platform",
            "measured_depth": 4000,
            "wellhead_rating_bar": psi_to_bar(10000),
            "tree_rating_bar": psi_to_bar(10000),
        },
    )
    w = well["id"]
    await put(
        f"/wells/{w}/survey",
        {
            "stations": [
                {"md_m": s.md_m, "inclination_deg": s.inclination_deg, "azimuth_deg": s.azimuth_deg}
                for s in STATIONS
            ]
        },
    )

    async def casing(name: str, kind: str, od: float, id_: float, shoe_md: float, **kw: Any) -> int:
        body = {
            "name": name,
            "casing_type": kind,
            "outer_diameter_in": od,
            "inner_diameter_in": id_,
            "top_md": 0,
            "bottom_md": shoe_md,
            **kw,
        }
        return (await post(f"/wells/{w}/casing-strings", body))["id"]

    c20 = await casing(
        "20in", "surface", 20.0, 18.73, md_at_tvd(SHOE_20_TVD), burst_limit_bar=psi_to_bar(1918)
    )
    c13 = await casing(
        "13-3/8in", "intermediate", 13.375, 12.415, 2000.0, collapse_limit_bar=psi_to_bar(2670)
    )
    c9 = await casing(
        "9-5/8in", "production", 9.625, 8.681, 3800.0, burst_limit_bar=psi_to_bar(7418)
    )
    await post(
        f"/wells/{w}/cement-intervals",
        {"casing_id": c13, "top_md": md_at_tvd(TOC_13_TVD), "bottom_md": 2000.0},
    )
    tubing = await post(
        f"/wells/{w}/tubing-strings",
        {
            "name": "4-1/2in",
            "outer_diameter_in": 4.5,
            "inner_diameter_in": 3.958,
            "top_md": 0,
            "bottom_md": 3600,
            "packer_depth_md": md_at_tvd(PACKER_TVD),
            "collapse_limit_bar": psi_to_bar(6818),
            "packer_rating_bar": psi_to_bar(10000),
            "fluid_gradient_bar_per_m": 0.1 * SG,
            "min_pressure_bar": psi_to_bar(20),
        },
    )

    async def annulus(name: str, inner: dict[str, int], outer: int, sg: float, **kw: Any) -> int:
        body = {
            "name": name,
            **inner,
            "outer_casing_string_id": outer,
            "fluid_gradient_bar_per_m": sg * SG,
            "safety_factor": 1.0,
            **kw,
        }
        return (await post(f"/wells/{w}/annuli", body))["id"]

    a = await annulus("A", {"inner_tubing_string_id": tubing["id"]}, c9, 1.032)
    b = await annulus("B", {"inner_casing_string_id": c9}, c13, 0.90)
    c = await annulus(
        "C", {"inner_casing_string_id": c13}, c20, 1.261, backup_gradient_bar_per_m=1.00 * SG
    )
    return {"well": w, "A": a, "B": b, "C": c, "tubing": tubing["id"], "c20": c20}
