"""Well integrity status: barrier envelopes, annulus evidence, the colour and the reasons.

Pure domain code: no I/O. Follows docs/domain.md "Integrity status" (after Norwegian Oil & Gas
guideline 117) and "Risk". Every verdict comes with its findings, the WHY, so an engineer
can see which element or annulus drove the colour.

All datetimes passed in must be comparable (all timezone-aware, which WIMS uses, or all
naive); this module never reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.contracts.enums import (
    CementQuality,
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    IntegrityStatus,
    RiskCategory,
    Severity,
    UtilisationLevel,
)
from shared.domain.risk import DEFAULT_RISK_MATRIX, RiskMatrix, risk

# --------------------------------------------------------------------------- elements


def effective_element_status(
    status: ElementStatus, next_test_due: datetime | None, now: datetime
) -> ElementStatus:
    """The status an element counts as now.

    An ok element whose periodic test is overdue (now strictly after its due time) counts as
    degraded: its last test no longer proves it. A due time of exactly now is due, not yet
    overdue. Degraded, failed and unknown elements keep their status: an overdue test cannot
    make them better or, for failed, worse. No due date (never scheduled) leaves it as is.
    """
    status = ElementStatus(status)
    if status is ElementStatus.ok and next_test_due is not None and now > next_test_due:
        return ElementStatus.degraded
    return status


# Worst first: the quality a cement element is judged by is the worst behind it.
_CEMENT_RANK = {CementQuality.poor: 0, CementQuality.uncertain: 1, CementQuality.ok: 2}


def cement_quality_behind(
    depth_md: float | None, intervals: Iterable[tuple[float, float, CementQuality | str]]
) -> CementQuality | None:
    """The worst quality_flag of the cement intervals (top_md, bottom_md, quality) behind a
    cement barrier element: those whose range holds the element's depth_md, or every
    interval of the well when the element has no depth (a cement element placed nowhere is
    judged by all the well's cement). None: no such interval."""
    found = [
        CementQuality(q)
        for top, bottom, q in intervals
        if depth_md is None or top <= depth_md <= bottom
    ]
    return min(found, key=_CEMENT_RANK.__getitem__) if found else None


def cement_degrades(
    element_type: ElementType, quality: CementQuality | None, override: bool
) -> bool:
    """poor or uncertain cement behind a cement element degrades it, unless an engineer has
    judged the element sound anyway (cement_quality_override)."""
    bad = quality in (CementQuality.poor, CementQuality.uncertain)
    return element_type is ElementType.cement and bad and not override


# --------------------------------------------------------------------------- envelopes


def envelope_status(statuses: Iterable[ElementStatus]) -> EnvelopeStatus:
    """Status of a barrier envelope from its elements' (effective) statuses.

    failed when any element failed; degraded when any element is degraded or unknown and
    none failed; intact when every element is ok. An envelope with no elements is degraded:
    nothing proves it exists, and calling it intact would turn missing data into a green
    well.
    """
    seen = {ElementStatus(s) for s in statuses}
    if not seen:
        return EnvelopeStatus.degraded
    if ElementStatus.failed in seen:
        return EnvelopeStatus.failed
    if seen == {ElementStatus.ok}:
        return EnvelopeStatus.intact
    return EnvelopeStatus.degraded


# --------------------------------------------------------------------------- annuli


# Order of utilisation levels from best to worst. unknown ranks above normal: an annulus we
# cannot judge (no MAASP or no usable reading) is not proven normal (docs/domain.md: "unknown,
# never normal"), yet it is not evidence of a problem either.
LEVEL_RANK: dict[UtilisationLevel, int] = {
    UtilisationLevel.normal: 0,
    UtilisationLevel.unknown: 1,
    UtilisationLevel.warning: 2,
    UtilisationLevel.exceeded: 3,
}


@dataclass(frozen=True)
class AnnulusEvidence:
    """What the pressure monitoring currently says about one annulus."""

    annulus_id: int
    name: str
    level: UtilisationLevel
    utilisation: float | None
    """measured pressure / MAASP; None when either is unknown."""
    sap_detected: bool = False
    diagnostic_test_due: bool = False
    maasp_defined: bool | None = None
    """whether the annulus has critical points to derive a MAASP from; None: not stated"""

    def __post_init__(self) -> None:
        # Accept the wire spelling ("warning") and fail early on a typo.
        object.__setattr__(self, "level", UtilisationLevel(self.level))


def highest_level(annuli: Iterable[AnnulusEvidence]) -> UtilisationLevel | None:
    """The worst utilisation level over the annuli (LEVEL_RANK order); None if no annuli."""
    levels = [a.level for a in annuli]
    if not levels:
        return None
    return max(levels, key=LEVEL_RANK.__getitem__)


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """One reason behind an assessment.

    code: a stable machine name (envelope_failed, envelope_degraded, element_failed,
    element_degraded, element_unknown, element_test_overdue, cement_quality, maasp_exceeded,
    maasp_warning,
    missing_maasp, sap_detected, diagnostic_test_due); severity: info, warning or critical;
    subject: what it is about ("envelope:primary", "element:5", "annulus:17"); message: for
    people, with the numbers.
    """

    code: str
    severity: str
    subject: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "subject": self.subject,
            "message": self.message,
        }


def _annulus_findings(annulus: AnnulusEvidence) -> list[Finding]:
    subject = f"annulus:{annulus.annulus_id}"
    pct = f"{annulus.utilisation:.0%}" if annulus.utilisation is not None else "unknown"
    out: list[Finding] = []
    if annulus.level is UtilisationLevel.exceeded:
        out.append(
            Finding(
                "maasp_exceeded",
                Severity.critical,
                subject,
                f"{annulus.name} annulus pressure at {pct} of MAASP: MAASP exceeded",
            )
        )
    elif annulus.level is UtilisationLevel.warning:
        out.append(
            Finding(
                "maasp_warning",
                Severity.warning,
                subject,
                f"{annulus.name} annulus pressure at {pct} of MAASP: warning level",
            )
        )
    elif annulus.level is UtilisationLevel.unknown:
        # The evidence does not say whether the MAASP or the reading is missing; either way
        # the annulus cannot be judged, which published practice flags daily.
        out.append(
            Finding(
                "missing_maasp",
                Severity.warning,
                subject,
                f"{annulus.name} annulus utilisation unknown: no MAASP or no usable reading",
            )
        )
    if annulus.sap_detected:
        out.append(
            Finding(
                "sap_detected",
                Severity.warning,
                subject,
                f"{annulus.name} annulus shows sustained annulus pressure (bleed-down and "
                "build-up not explained by temperature)",
            )
        )
    if annulus.diagnostic_test_due:
        out.append(
            Finding(
                "diagnostic_test_due",
                Severity.warning,
                subject,
                f"{annulus.name} annulus: bleed-down/build-up diagnostic test due",
            )
        )
    return out


# --------------------------------------------------------------------------- well status

_COLOUR_RANK: dict[IntegrityStatus, int] = {
    IntegrityStatus.green: 0,
    IntegrityStatus.amber: 1,
    IntegrityStatus.red: 2,
}


def _worse(a: IntegrityStatus, b: IntegrityStatus) -> IntegrityStatus:
    return a if _COLOUR_RANK[a] >= _COLOUR_RANK[b] else b


def envelope_colour(primary: EnvelopeStatus, secondary: EnvelopeStatus) -> IntegrityStatus:
    """The colour from the two barrier envelopes alone (guideline 117 style).

    green: both intact. amber: one degraded and the other intact (117 yellow), or one failed
    and the other intact (117 orange). red: one failed and the other not intact. Both
    degraded is amber (our choice): no envelope has failed, so the well still has two
    barriers in place, if weakened, and red is kept for a well that has lost one barrier
    and cannot rely on the other.
    """
    statuses = {EnvelopeStatus(primary), EnvelopeStatus(secondary)}
    if statuses == {EnvelopeStatus.intact}:
        return IntegrityStatus.green
    if EnvelopeStatus.failed in statuses:
        # {failed} alone means both failed; {failed, degraded}: the other is not intact.
        if statuses == {EnvelopeStatus.failed, EnvelopeStatus.intact}:
            return IntegrityStatus.amber
        return IntegrityStatus.red
    return IntegrityStatus.amber


def well_status(
    primary: EnvelopeStatus,
    secondary: EnvelopeStatus,
    annuli: Sequence[AnnulusEvidence] = (),
) -> IntegrityStatus:
    """Well colour: the envelope colour, then raised (never lowered) by annulus evidence.

    Any annulus with MAASP exceeded makes the well red; a warning level or SAP on any
    annulus makes it at least amber. An unknown level (missing MAASP or reading) and a due
    diagnostic test are findings but do not change the colour: they call for data or a
    test, not for treating the barrier as weakened.
    """
    colour = envelope_colour(primary, secondary)
    for a in annuli:
        if a.level is UtilisationLevel.exceeded:
            colour = _worse(colour, IntegrityStatus.red)
        if a.level is UtilisationLevel.warning or a.sap_detected:
            colour = _worse(colour, IntegrityStatus.amber)
    return colour


# --------------------------------------------------------------------------- probability


@dataclass(frozen=True)
class ProbabilityWeights:
    """How the evidence adds up to a probability level (1..5). WIMS defaults, configurable.

    probability = base + per envelope (degraded_envelope or failed_envelope)
                  + the worst annulus level once (annulus_warning or annulus_exceeded,
                    or missing_maasp for unknown) + sap once if any annulus shows SAP,
    clamped to 1..5.

    The annulus terms count once per well, not per annulus: three annuli in warning are one
    symptom of the well's condition, and counting each would push every multi-annulus well
    to 5. Exceeded replaces warning rather than adding to it.

    Defaults: a healthy well is 1; one degraded envelope 2; one failed envelope 3; both
    failed 5; MAASP exceeded adds 2 because the pressure already stands at the limit of
    an element of the annulus.
    """

    base: int = 1
    degraded_envelope: int = 1
    failed_envelope: int = 2
    annulus_warning: int = 1
    annulus_exceeded: int = 2
    sap: int = 1
    missing_maasp: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.base <= 5:
            raise ValueError(f"base must be 1..5, got {self.base}")
        for name in (
            "degraded_envelope",
            "failed_envelope",
            "annulus_warning",
            "annulus_exceeded",
            "sap",
            "missing_maasp",
        ):
            if getattr(self, name) < 0:
                # A negative weight would let bad evidence lower the probability.
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


DEFAULT_PROBABILITY_WEIGHTS = ProbabilityWeights()


def probability_level(
    primary: EnvelopeStatus,
    secondary: EnvelopeStatus,
    annuli: Sequence[AnnulusEvidence] = (),
    weights: ProbabilityWeights = DEFAULT_PROBABILITY_WEIGHTS,
) -> int:
    """Probability of a loss of containment, 1..5, from the same evidence as the colour."""
    total = weights.base
    for env in (EnvelopeStatus(primary), EnvelopeStatus(secondary)):
        if env is EnvelopeStatus.failed:
            total += weights.failed_envelope
        elif env is EnvelopeStatus.degraded:
            total += weights.degraded_envelope
    worst = highest_level(annuli)
    if worst is UtilisationLevel.exceeded:
        total += weights.annulus_exceeded
    elif worst is UtilisationLevel.warning:
        total += weights.annulus_warning
    elif worst is UtilisationLevel.unknown:
        total += weights.missing_maasp
    if any(a.sap_detected for a in annuli):
        total += weights.sap
    return max(1, min(5, total))


# --------------------------------------------------------------------------- whole well

_ENVELOPES: tuple[EnvelopeType, EnvelopeType] = (EnvelopeType.primary, EnvelopeType.secondary)


@dataclass(frozen=True)
class ElementInput:
    """One barrier element as the evaluation needs it."""

    element_id: int
    name: str
    element_type: ElementType
    envelope: EnvelopeType | str
    """"primary" or "secondary" (stored as EnvelopeType, which equals the string)."""
    status: ElementStatus
    next_test_due: datetime | None
    cement_quality: CementQuality | None = None
    """A cement element: the worst quality_flag of the cement behind it."""
    cement_quality_override: bool = False

    def __post_init__(self) -> None:
        # Normalise wire spellings and reject an element that belongs to no envelope:
        # silently dropping it would hide a failed barrier.
        try:
            object.__setattr__(self, "envelope", EnvelopeType(self.envelope))
        except ValueError:
            raise ValueError(
                f"element {self.element_id}: envelope must be 'primary' or 'secondary', "
                f"got {self.envelope!r}"
            ) from None
        object.__setattr__(self, "element_type", ElementType(self.element_type))
        object.__setattr__(self, "status", ElementStatus(self.status))
        if self.cement_quality is not None:
            object.__setattr__(self, "cement_quality", CementQuality(self.cement_quality))

    def effective_status(self, now: datetime) -> ElementStatus:
        """The status the element counts as now: an overdue test or poor or uncertain
        cement behind it turns an ok element degraded."""
        status = effective_element_status(self.status, self.next_test_due, now)
        degrades = cement_degrades(
            self.element_type, self.cement_quality, self.cement_quality_override
        )
        if status is ElementStatus.ok and degrades:
            return ElementStatus.degraded
        return status


@dataclass(frozen=True)
class WellInputs:
    well_id: int
    consequence: int
    elements: Sequence[ElementInput]
    annuli: Sequence[AnnulusEvidence]


@dataclass(frozen=True)
class IntegrityAssessment:
    well_id: int
    status: IntegrityStatus
    primary: EnvelopeStatus
    secondary: EnvelopeStatus
    probability: int
    consequence: int
    risk_score: int
    risk_category: RiskCategory
    highest_annulus_utilisation: float | None
    """Highest known utilisation over the annuli; None if none is known."""
    max_level: UtilisationLevel | None
    """Worst utilisation level (band) over the annuli; None if the well has no annuli."""
    sap_detected: bool
    findings: tuple[Finding, ...] = field(default=())
    """The WHY, in a stable order: envelopes (primary, secondary), then elements by
    envelope and id, then annuli by id."""
    assessment_gaps: tuple[str, ...] = field(default=())
    """What keeps the well from a full assessment (see ``assessment_gaps``); empty: none."""

    @property
    def assessed(self) -> bool:
        """False while data a full assessment needs is missing: the colour is then only
        what the evidence so far shows, and must not be read as "all is well"."""
        return not self.assessment_gaps

    def fingerprint(self) -> tuple[Any, ...]:
        """What matters for a snapshot, hashable; equal fingerprints mean nothing changed.

        Uses the utilisation band (max_level), not the raw utilisation, so pressure moving
        within a band does not emit a snapshot. The (code, subject) of each finding is
        included too, so a new reason (a second element failing in an already failed
        envelope) is recorded; messages carry raw numbers and are left out.
        """
        return (
            self.status,
            self.primary,
            self.secondary,
            self.max_level,
            self.sap_detected,
            self.risk_score,
            self.risk_category,
            tuple((f.code, f.subject) for f in self.findings),
            # Only when there are gaps: a fully assessed well keeps the fingerprint it had
            # before gaps were judged, so an upgrade writes no snapshot burst.
        ) + ((self.assessment_gaps,) if self.assessment_gaps else ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "well_id": self.well_id,
            "status": str(self.status),
            "primary": str(self.primary),
            "secondary": str(self.secondary),
            "probability": self.probability,
            "consequence": self.consequence,
            "risk_score": self.risk_score,
            "risk_category": str(self.risk_category),
            "highest_annulus_utilisation": self.highest_annulus_utilisation,
            "max_level": str(self.max_level) if self.max_level is not None else None,
            "sap_detected": self.sap_detected,
            "findings": [f.to_dict() for f in self.findings],
            "assessed": self.assessed,
            "assessment_gaps": list(self.assessment_gaps),
        }


def _element_finding(el: ElementInput, effective: ElementStatus) -> Finding | None:
    subject = f"element:{el.element_id}"
    label = f"{el.name} ({el.element_type.value}, {el.envelope} envelope)"
    if el.status is ElementStatus.failed:
        return Finding("element_failed", Severity.critical, subject, f"{label} failed")
    if el.status is ElementStatus.degraded:
        return Finding("element_degraded", Severity.warning, subject, f"{label} degraded")
    if el.status is ElementStatus.unknown:
        return Finding("element_unknown", Severity.warning, subject, f"{label} status unknown")
    if cement_degrades(el.element_type, el.cement_quality, el.cement_quality_override):
        quality = el.cement_quality.value if el.cement_quality is not None else "?"
        return Finding(
            "cement_quality",
            Severity.warning,
            subject,
            f"{label} counts as degraded: the cement behind it is flagged {quality} "
            "(an engineer may override with cement_quality_override)",
        )
    if effective is ElementStatus.degraded and el.next_test_due is not None:
        due = el.next_test_due.isoformat()
        return Finding(
            "element_test_overdue",
            Severity.warning,
            subject,
            f"{label} periodic test overdue since {due}: counts as degraded",
        )
    return None


def _envelope_finding(env: EnvelopeType, status: EnvelopeStatus, count: int) -> Finding | None:
    subject = f"envelope:{env.value}"
    if status is EnvelopeStatus.failed:
        return Finding(
            "envelope_failed", Severity.critical, subject, f"{env.value} envelope failed"
        )
    if status is EnvelopeStatus.degraded:
        why = "no barrier elements recorded" if count == 0 else "an element is not verified ok"
        return Finding(
            "envelope_degraded", Severity.warning, subject, f"{env.value} envelope degraded: {why}"
        )
    return None


def assessment_gaps(
    elements_by_envelope: dict[EnvelopeType, int], annuli: Sequence[AnnulusEvidence]
) -> tuple[str, ...]:
    """Why a well is not fully assessed, for people; empty when it is.

    An envelope without barrier elements cannot be judged (nothing proves it exists) and an
    annulus without a MAASP cannot be judged against a limit: the colour of such a well is
    built on missing data, so it is shown as "not assessed", never as a plain green. An
    annulus whose MAASP is not stated (old configuration events) is not counted as missing.
    """
    gaps = [
        f"no barrier elements in the {env.value} envelope"
        for env in _ENVELOPES
        if not elements_by_envelope.get(env)
    ]
    gaps += [f"annulus {a.name} has no MAASP" for a in annuli if a.maasp_defined is False]
    return tuple(gaps)


def evaluate_well(
    inputs: WellInputs,
    now: datetime,
    matrix: RiskMatrix = DEFAULT_RISK_MATRIX,
    weights: ProbabilityWeights = DEFAULT_PROBABILITY_WEIGHTS,
) -> IntegrityAssessment:
    """Assess one well: envelopes, colour, probability, risk and the findings behind them.

    Deterministic: the same inputs and now give an equal assessment whatever the order of
    elements and annuli, so a service can compare fingerprints to emit only on change.
    Raises ValueError when consequence is outside 1..5.
    """
    env_rank = {env: i for i, env in enumerate(_ENVELOPES)}
    elements = sorted(inputs.elements, key=lambda e: (env_rank[e.envelope], e.element_id))
    annuli = sorted(inputs.annuli, key=lambda a: a.annulus_id)

    env_status: dict[EnvelopeType, EnvelopeStatus] = {}
    env_size: dict[EnvelopeType, int] = {}
    findings: list[Finding] = []
    element_findings: list[Finding] = []
    for env in _ENVELOPES:
        members = [(e, e.effective_status(now)) for e in elements if e.envelope is env]
        env_status[env] = envelope_status(eff for _, eff in members)
        env_size[env] = len(members)
        f = _envelope_finding(env, env_status[env], len(members))
        if f is not None:
            findings.append(f)
        for e, eff in members:
            ef = _element_finding(e, eff)
            if ef is not None:
                element_findings.append(ef)
    findings.extend(element_findings)
    for a in annuli:
        findings.extend(_annulus_findings(a))

    primary, secondary = env_status[EnvelopeType.primary], env_status[EnvelopeType.secondary]
    probability = probability_level(primary, secondary, annuli, weights)
    outcome = risk(probability, inputs.consequence, matrix)
    known = [a.utilisation for a in annuli if a.utilisation is not None]
    return IntegrityAssessment(
        well_id=inputs.well_id,
        status=well_status(primary, secondary, annuli),
        primary=primary,
        secondary=secondary,
        probability=probability,
        consequence=inputs.consequence,
        risk_score=outcome.score,
        risk_category=outcome.category,
        highest_annulus_utilisation=max(known) if known else None,
        max_level=highest_level(annuli),
        sap_detected=any(a.sap_detected for a in annuli),
        findings=tuple(findings),
        assessment_gaps=assessment_gaps(env_size, annuli),
    )
