"""Integrity status: envelopes, the well colour table, probability, findings, fingerprint."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.enums import (
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    IntegrityStatus,
    RiskCategory,
    UtilisationLevel,
)
from shared.domain.integrity import (
    AnnulusEvidence,
    ElementInput,
    Finding,
    ProbabilityWeights,
    WellInputs,
    effective_element_status,
    envelope_status,
    evaluate_well,
    probability_level,
    well_status,
)
from shared.domain.risk import DEFAULT_RISK_MATRIX, RiskMatrix

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OK, DEG, FAIL, UNK = (
    ElementStatus.ok,
    ElementStatus.degraded,
    ElementStatus.failed,
    ElementStatus.unknown,
)
INT, D, F = EnvelopeStatus.intact, EnvelopeStatus.degraded, EnvelopeStatus.failed
G, A, R = IntegrityStatus.green, IntegrityStatus.amber, IntegrityStatus.red


def annulus(
    level: UtilisationLevel = UtilisationLevel.normal,
    utilisation: float | None = 0.5,
    *,
    annulus_id: int = 17,
    name: str = "A",
    sap: bool = False,
    diag: bool = False,
) -> AnnulusEvidence:
    return AnnulusEvidence(annulus_id, name, level, utilisation, sap, diag)


# ---------------------------------------------------------------- element and envelope


@pytest.mark.parametrize(
    ("status", "due", "expected"),
    [
        (OK, None, OK),
        (OK, NOW + timedelta(days=1), OK),
        (OK, NOW, OK),  # due exactly now is due, not overdue
        (OK, NOW - timedelta(seconds=1), DEG),
        (OK, NOW - timedelta(days=400), DEG),
        (DEG, NOW - timedelta(days=1), DEG),
        (FAIL, NOW - timedelta(days=1), FAIL),
        (UNK, NOW - timedelta(days=1), UNK),
        (FAIL, None, FAIL),
        ("ok", NOW - timedelta(days=1), DEG),  # wire spelling accepted
    ],
)
def test_effective_element_status(status, due, expected) -> None:
    assert effective_element_status(status, due, NOW) is expected


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([OK], INT),
        ([OK, OK, OK], INT),
        ([OK, DEG], D),
        ([OK, UNK], D),
        ([UNK], D),
        ([DEG, UNK], D),
        ([OK, FAIL], F),
        ([DEG, FAIL], F),
        ([UNK, FAIL, OK], F),
        ([FAIL], F),
        ([], D),  # no elements: nothing proves the envelope
    ],
)
def test_envelope_status_from_elements(statuses, expected) -> None:
    assert envelope_status(statuses) is expected
    assert envelope_status(iter(statuses)) is expected  # any iterable, consumed once


# ---------------------------------------------------------------- the well colour table

# (primary, secondary) -> colour from the envelopes alone, written out by hand.
ENVELOPE_COLOUR = {
    (INT, INT): G,
    (INT, D): A,
    (D, INT): A,
    (D, D): A,  # both degraded: our choice, amber (no barrier lost)
    (INT, F): A,
    (F, INT): A,
    (D, F): R,
    (F, D): R,
    (F, F): R,
}
# annulus evidence -> colour for each envelope colour.
RAISED = {
    "none": {G: G, A: A, R: R},
    "normal": {G: G, A: A, R: R},
    "unknown": {G: G, A: A, R: R},  # missing MAASP is a finding, not a colour
    "diag_due": {G: G, A: A, R: R},
    "warning": {G: A, A: A, R: R},
    "sap": {G: A, A: A, R: R},
    "exceeded": {G: R, A: R, R: R},
    "warning+sap": {G: A, A: A, R: R},
}
EVIDENCE = {
    "none": [],
    "normal": [annulus(UtilisationLevel.normal)],
    "unknown": [annulus(UtilisationLevel.unknown, None)],
    "diag_due": [annulus(UtilisationLevel.normal, diag=True)],
    "warning": [
        annulus(UtilisationLevel.normal),
        annulus(UtilisationLevel.warning, 0.85, annulus_id=18),
    ],
    "sap": [annulus(UtilisationLevel.normal, 0.3, sap=True)],
    "exceeded": [annulus(UtilisationLevel.exceeded, 1.02), annulus(annulus_id=18)],
    "warning+sap": [annulus(UtilisationLevel.warning, 0.9, sap=True)],
}


def test_colour_table_is_complete() -> None:
    envs = list(EnvelopeStatus)
    assert set(ENVELOPE_COLOUR) == set(itertools.product(envs, envs))


@pytest.mark.parametrize(
    ("primary", "secondary", "evidence"),
    [(p, s, e) for (p, s) in ENVELOPE_COLOUR for e in EVIDENCE],
)
def test_well_status_table(primary, secondary, evidence) -> None:
    expected = RAISED[evidence][ENVELOPE_COLOUR[(primary, secondary)]]
    assert well_status(primary, secondary, EVIDENCE[evidence]) is expected


def test_annulus_evidence_never_lowers_colour() -> None:
    assert well_status(F, F, [annulus(UtilisationLevel.normal)]) is R


# ---------------------------------------------------------------- probability


@pytest.mark.parametrize(
    ("primary", "secondary", "annuli", "expected"),
    [
        (INT, INT, [], 1),
        (INT, INT, [annulus()], 1),
        (D, INT, [], 2),
        (D, D, [], 3),
        (F, INT, [], 3),
        (F, D, [], 4),
        (F, F, [], 5),
        (INT, INT, [annulus(UtilisationLevel.warning, 0.85)], 2),
        (INT, INT, [annulus(UtilisationLevel.exceeded, 1.1)], 3),
        # the worst annulus counts once; exceeded replaces warning
        (
            INT,
            INT,
            [
                annulus(UtilisationLevel.warning, 0.85),
                annulus(UtilisationLevel.exceeded, 1.1, annulus_id=18),
                annulus(UtilisationLevel.warning, 0.9, annulus_id=19),
            ],
            3,
        ),
        (INT, INT, [annulus(sap=True)], 2),
        (INT, INT, [annulus(UtilisationLevel.unknown, None)], 1),
        (F, F, [annulus(UtilisationLevel.exceeded, 1.5, sap=True)], 5),  # clamped
    ],
)
def test_probability_level(primary, secondary, annuli, expected) -> None:
    assert probability_level(primary, secondary, annuli) == expected


def test_probability_weights_configurable() -> None:
    w = ProbabilityWeights(base=2, degraded_envelope=0, missing_maasp=1)
    assert probability_level(D, D, [], w) == 2
    assert probability_level(INT, INT, [annulus(UtilisationLevel.unknown, None)], w) == 3


@pytest.mark.parametrize("kwargs", [{"base": 0}, {"base": 6}, {"sap": -1}])
def test_probability_weights_rejects_nonsense(kwargs) -> None:
    with pytest.raises(ValueError):
        ProbabilityWeights(**kwargs)


# ---------------------------------------------------------------- evaluate_well


def el(
    element_id: int,
    envelope: str,
    status: ElementStatus = OK,
    due: datetime | None = None,
    element_type: ElementType = ElementType.tubing,
    name: str | None = None,
) -> ElementInput:
    return ElementInput(element_id, name or f"el{element_id}", element_type, envelope, status, due)


HEALTHY = (
    el(1, "primary", element_type=ElementType.sssv, due=NOW + timedelta(days=30)),
    el(2, "primary", element_type=ElementType.packer),
    el(3, "secondary", element_type=ElementType.casing),
    el(4, "secondary", element_type=ElementType.wellhead),
)


def well(elements=HEALTHY, annuli=(), consequence: int = 3, well_id: int = 7) -> WellInputs:
    return WellInputs(well_id, consequence, tuple(elements), tuple(annuli))


def test_evaluate_healthy_well() -> None:
    a = evaluate_well(well(annuli=[annulus(utilisation=0.4)]), NOW, DEFAULT_RISK_MATRIX)
    assert a.status is G
    assert (a.primary, a.secondary) == (INT, INT)
    assert a.probability == 1
    assert a.consequence == 3
    assert a.risk_score == 12  # 1 * 3 * 100 / 25
    assert a.risk_category is RiskCategory.low
    assert a.highest_annulus_utilisation == 0.4
    assert a.max_level is UtilisationLevel.normal
    assert a.sap_detected is False
    assert a.findings == ()


def test_evaluate_overdue_test_degrades_envelope_and_says_why() -> None:
    elements = [
        el(1, "primary", element_type=ElementType.sssv, due=NOW - timedelta(days=3), name="SSSV"),
        *HEALTHY[1:],
    ]
    a = evaluate_well(well(elements), NOW, DEFAULT_RISK_MATRIX)
    assert (a.primary, a.secondary, a.status) == (D, INT, A)
    assert a.probability == 2
    assert [(f.code, f.severity, f.subject) for f in a.findings] == [
        ("envelope_degraded", "warning", "envelope:primary"),
        ("element_test_overdue", "warning", "element:1"),
    ]
    assert "SSSV" in a.findings[1].message
    assert "overdue" in a.findings[1].message


def test_evaluate_red_well_findings_in_stable_order() -> None:
    elements = [
        el(9, "secondary", UNK),
        el(3, "secondary", OK),
        el(5, "primary", FAIL, element_type=ElementType.packer, name="Production packer"),
        el(2, "primary", DEG),
        el(1, "primary", OK),
    ]
    annuli = [
        annulus(UtilisationLevel.warning, 0.83, annulus_id=21, name="B", diag=True),
        annulus(UtilisationLevel.exceeded, 1.04, annulus_id=20, name="A", sap=True),
        annulus(UtilisationLevel.unknown, None, annulus_id=22, name="C"),
    ]
    a = evaluate_well(well(elements, annuli, consequence=4), NOW, DEFAULT_RISK_MATRIX)
    assert (a.primary, a.secondary, a.status) == (F, D, R)
    assert a.probability == 5  # 1 + 2 + 1 + 2 + 1 = 7, clamped
    assert (a.risk_score, a.risk_category) == (80, RiskCategory.extreme)
    assert a.highest_annulus_utilisation == 1.04
    assert a.max_level is UtilisationLevel.exceeded
    assert a.sap_detected is True
    assert [(f.code, f.subject) for f in a.findings] == [
        ("envelope_failed", "envelope:primary"),
        ("envelope_degraded", "envelope:secondary"),
        ("element_degraded", "element:2"),
        ("element_failed", "element:5"),
        ("element_unknown", "element:9"),
        ("maasp_exceeded", "annulus:20"),
        ("sap_detected", "annulus:20"),
        ("maasp_warning", "annulus:21"),
        ("diagnostic_test_due", "annulus:21"),
        ("missing_maasp", "annulus:22"),
    ]
    by_code = {f.code: f for f in a.findings}
    assert by_code["element_failed"].severity == "critical"
    assert "Production packer" in by_code["element_failed"].message
    assert "104%" in by_code["maasp_exceeded"].message
    assert by_code["maasp_exceeded"].severity == "critical"
    assert "83%" in by_code["maasp_warning"].message

    # order of the inputs does not matter
    shuffled = well(list(reversed(elements)), list(reversed(annuli)), consequence=4)
    assert evaluate_well(shuffled, NOW, DEFAULT_RISK_MATRIX) == a


def test_evaluate_empty_envelope_is_degraded_with_reason() -> None:
    a = evaluate_well(well(HEALTHY[:2]), NOW, DEFAULT_RISK_MATRIX)
    assert (a.primary, a.secondary, a.status) == (INT, D, A)
    assert a.findings[0].code == "envelope_degraded"
    assert "no barrier elements" in a.findings[0].message


def test_evaluate_without_annuli() -> None:
    a = evaluate_well(well(annuli=[]), NOW, DEFAULT_RISK_MATRIX)
    assert a.highest_annulus_utilisation is None
    assert a.max_level is None


def test_evaluate_unknown_utilisation_only() -> None:
    a = evaluate_well(
        well(annuli=[annulus(UtilisationLevel.unknown, None)]), NOW, DEFAULT_RISK_MATRIX
    )
    assert a.highest_annulus_utilisation is None
    assert a.max_level is UtilisationLevel.unknown
    assert a.status is G


def test_evaluate_uses_given_matrix() -> None:
    cautious = RiskMatrix.from_cells(
        (p, c, RiskCategory.high) for p in range(1, 6) for c in range(1, 6)
    )
    a = evaluate_well(well(), NOW, cautious)
    assert a.risk_category is RiskCategory.high
    assert a.risk_score == 12


def test_evaluate_rejects_bad_consequence() -> None:
    with pytest.raises(ValueError):
        evaluate_well(well(consequence=6), NOW, DEFAULT_RISK_MATRIX)


def test_element_input_rejects_unknown_envelope() -> None:
    with pytest.raises(ValueError, match="envelope"):
        el(1, "tertiary")


def test_finding_to_dict() -> None:
    a = evaluate_well(well(annuli=[annulus(sap=True)]), NOW, DEFAULT_RISK_MATRIX)
    assert a.findings[0].to_dict() == {
        "code": "sap_detected",
        "severity": "warning",
        "subject": "annulus:17",
        "message": a.findings[0].message,
    }
    assert Finding("x", "info", "well:1", "m").to_dict()["severity"] == "info"
    d = a.to_dict()
    assert d["status"] == "amber" and d["findings"][0]["code"] == "sap_detected"


# ---------------------------------------------------------------- fingerprint


def fp(utilisation: float, level: UtilisationLevel, sap: bool = False) -> tuple:
    inputs = well(annuli=[annulus(level, utilisation, sap=sap), annulus(annulus_id=18)])
    return evaluate_well(inputs, NOW, DEFAULT_RISK_MATRIX).fingerprint()


def test_fingerprint_stable_for_identical_inputs() -> None:
    first = fp(0.5, UtilisationLevel.normal)
    assert first == fp(0.5, UtilisationLevel.normal)
    assert hash(first) == hash(fp(0.5, UtilisationLevel.normal))


def test_fingerprint_ignores_movement_within_band() -> None:
    assert fp(0.41, UtilisationLevel.normal) == fp(0.62, UtilisationLevel.normal)
    assert fp(0.81, UtilisationLevel.warning) == fp(0.93, UtilisationLevel.warning)


def test_fingerprint_changes_with_band_and_sap() -> None:
    normal = fp(0.79, UtilisationLevel.normal)
    warning = fp(0.81, UtilisationLevel.warning)
    exceeded = fp(1.01, UtilisationLevel.exceeded)
    assert len({normal, warning, exceeded}) == 3
    assert fp(0.5, UtilisationLevel.normal, sap=True) != normal


def test_fingerprint_changes_when_an_element_fails() -> None:
    healthy = evaluate_well(well(), NOW, DEFAULT_RISK_MATRIX).fingerprint()
    broken = evaluate_well(
        well([*HEALTHY[:3], el(4, "secondary", FAIL)]), NOW, DEFAULT_RISK_MATRIX
    ).fingerprint()
    assert healthy != broken
