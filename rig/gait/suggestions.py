"""Decision support from a gait report: foot type, the shoe category that usually goes with
it, and whether a heel lift is worth considering. Suggestions only — the clinician decides.

Each suggestion carries the numbers behind it (mean and the 95 % confidence interval over
strides, from ``kinematics.frontal_summary``), the thresholds it was judged against and
where they come from. A class is named only when the whole confidence interval lies on one
side of every threshold that matters; when the interval straddles one, the answer is
"cannot tell" with the two classes it lies between, because the stride-to-stride spread of
this walk does not allow more.

Thresholds (2D rear-view rearfoot angle, heel-ankle line against the shank, eversion +, in
stance) are conventions, not validated cut-offs, and every clinic may change them:

- supinated below ``SUPINATED_BELOW_DEG`` (2°): the heel hardly everts at all;
- pronated from ``PRONATED_FROM_DEG`` (8°): the project's finding threshold for excessive
  rearfoot eversion (:mod:`rig.gait.findings`);
- markedly pronated from ``MARKED_FROM_DEG`` (12°): where shoe guides move from "stability"
  to "motion control".

The shoe mapping (supinated -> neutral-cushioned, neutral -> neutral, pronated -> stability,
markedly pronated -> motion control) is the running-shoe trade's convention. Its evidence is
weak: choosing shoes by foot shape did not lower injuries (Knapik et al. 2009, J Strength
Cond Res 23:685-697, Army recruits), and novice runners with pronated feet
in neutral shoes were not injured more (Nielsen et al. 2014, Br J Sports Med 48:440-447); the
text says so.

Heel lift: a persistent frontal pelvic tilt in stance suggests a leg-length difference on
the lower side. Over a hip-joint separation of ``HIP_WIDTH_M`` (0.2 m) the obliquity converts
to millimetres; clinically relevant differences start near 5-10 mm (Gurney 2002, Gait Posture
15:195-206), and the 2° threshold of :mod:`rig.gait.findings` is ~7 mm. A 2D projection
cannot tell a structural from a functional difference: measure before lifting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .findings import THRESHOLDS

SUPINATED_BELOW_DEG = 2.0
PRONATED_FROM_DEG = THRESHOLDS["rearfoot_eversion_2d_deg"][0]
MARKED_FROM_DEG = 12.0
OBLIQUITY_FROM_DEG = THRESHOLDS["pelvic_obliquity_2d_deg"][0]
HIP_WIDTH_M = 0.2
MIN_STRIDES = 4  # as the findings: fewer strides give no suggestion, with the reason

FOOT_TYPES = ("supinated", "neutral", "pronated", "markedly pronated")
FOOT_BOUNDS_DEG = (SUPINATED_BELOW_DEG, PRONATED_FROM_DEG, MARKED_FROM_DEG)  # between FOOT_TYPES
SHOE_FOR = {"supinated": "neutral-cushioned", "neutral": "neutral", "pronated": "stability",
            "markedly pronated": "motion control"}
FOOT_SOURCE = (f"2D rearfoot eversion in stance: supinated < {SUPINATED_BELOW_DEG:g}°, neutral "
               f"{SUPINATED_BELOW_DEG:g}–{PRONATED_FROM_DEG:g}°, pronated ≥ {PRONATED_FROM_DEG:g}°, markedly "
               f"pronated ≥ {MARKED_FROM_DEG:g}° (clinical conventions, not validated cut-offs)")
SHOE_SOURCE = ("the shoe trade's pronation-based categories; prescribing by foot type is weakly supported "
               "(Knapik et al. 2009; Nielsen et al. 2014)")
LIFT_SOURCE = (f"pelvic obliquity ≥ {OBLIQUITY_FROM_DEG:g}° ≈ 7 mm leg-length difference over "
               f"{HIP_WIDTH_M:g} m hip width; relevant from 5–10 mm (Gurney 2002)")


@dataclass(frozen=True)
class Suggestion:
    """One suggestion: ``kind`` foot_type / shoe / heel_lift, ``side`` or None for both,
    ``answer`` (a class, "cannot tell" or "not indicated"), the evidence and its source."""

    kind: str
    side: str | None
    answer: str
    text: str
    value: float | None  # the measured mean (deg)
    ci95: tuple[float, float] | None
    n_strides: int | None
    thresholds: str
    source: str
    certain: bool  # False: "cannot tell", or too few strides
    options: tuple[str, ...] = ()  # "cannot tell": the answers the interval lies between


def _ci(summary: dict) -> tuple[float, float] | None:
    ci = summary.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(c, (int, float)) and math.isfinite(c)
                                                              for c in ci):
        return float(ci[0]), float(ci[1])
    return None


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def classify(value: float, bounds: tuple[float, ...], labels: tuple[str, ...]) -> str:
    """The label of the interval ``value`` lies in (``labels`` has one more entry than ``bounds``)."""
    return labels[sum(value >= b for b in bounds)]


def foot_type(side: str, summary: dict) -> Suggestion:
    """Foot type of one side from its rearfoot eversion summary {mean, sd, n, ci}."""
    mean, ci, n = _number(summary.get("mean")), _ci(summary), summary.get("n")
    common = dict(kind="foot_type", side=side, value=mean, ci95=ci, n_strides=n,
                  thresholds=f"{SUPINATED_BELOW_DEG:g}° / {PRONATED_FROM_DEG:g}° / {MARKED_FROM_DEG:g}°",
                  source=FOOT_SOURCE)
    if mean is None:
        return Suggestion(answer="cannot tell", text=f"{side.capitalize()} foot: no rearfoot angle measured.",
                          certain=False, **common)
    if isinstance(n, int) and n < MIN_STRIDES:
        return Suggestion(answer="cannot tell", certain=False, **common,
                          text=f"{side.capitalize()} foot: {n} strides are too few to judge (needs {MIN_STRIDES}).")
    if ci is None:
        return Suggestion(answer="cannot tell", certain=False, **common,
                          text=f"{side.capitalize()} foot: rearfoot eversion {mean:.1f}° without a confidence "
                               "interval (stride spread unknown).")
    lo, hi = classify(ci[0], FOOT_BOUNDS_DEG, FOOT_TYPES), classify(ci[1], FOOT_BOUNDS_DEG, FOOT_TYPES)
    numbers = f"rearfoot eversion {mean:.1f}° in stance (95 % CI {ci[0]:.1f} to {ci[1]:.1f}°, {n} strides)"
    if lo != hi:
        between = FOOT_TYPES[FOOT_TYPES.index(lo):FOOT_TYPES.index(hi) + 1]
        return Suggestion(answer="cannot tell", certain=False, options=between, **common,
                          text=f"{side.capitalize()} foot: cannot tell between {' and '.join(between)} — "
                               f"{numbers} straddles a threshold.")
    return Suggestion(answer=lo, certain=True, **common, text=f"{side.capitalize()} foot looks {lo}: {numbers}.")


def shoe(side: str, foot: Suggestion) -> Suggestion:
    """The shoe category that usually goes with ``foot``'s type; both when it cannot tell."""
    common = dict(kind="shoe", side=side, value=foot.value, ci95=foot.ci95, n_strides=foot.n_strides,
                  thresholds=foot.thresholds, source=SHOE_SOURCE)
    if foot.certain:
        category = SHOE_FOR[foot.answer]
        return Suggestion(answer=category, certain=True, **common,
                          text=f"{side.capitalize()}: a {category} shoe usually suits a {foot.answer} foot.")
    options = tuple(SHOE_FOR[t] for t in foot.options)
    text = (f"{side.capitalize()}: {' or '.join(options)}, depending on which the foot is." if options
            else f"{side.capitalize()}: no shoe category without a foot type.")
    return Suggestion(answer="cannot tell", certain=False, text=text, options=options, **common)


def heel_lift(summary: dict | None) -> Suggestion:
    """Whether pelvic obliquity {mean, sd, n, ci} (+ = left hip higher) points to a heel lift."""
    summary = summary or {}
    mean, ci, n = _number(summary.get("mean")), _ci(summary), summary.get("n")
    common = dict(kind="heel_lift", value=mean, ci95=ci, n_strides=n, thresholds=f"±{OBLIQUITY_FROM_DEG:g}°",
                  source=LIFT_SOURCE)
    if mean is None:
        return Suggestion(side=None, answer="cannot tell", certain=False, text="No pelvic obliquity measured.",
                          **common)
    if isinstance(n, int) and n < MIN_STRIDES:
        return Suggestion(side=None, answer="cannot tell", certain=False, **common,
                          text=f"Pelvic obliquity: {n} strides are too few to judge (needs {MIN_STRIDES}).")
    short = "right" if mean > 0 else "left"
    mm = 1000.0 * HIP_WIDTH_M * math.tan(math.radians(abs(mean)))
    numbers = (f"pelvic obliquity {mean:+.1f}° ({'left' if mean > 0 else 'right'} hip higher, about {mm:.0f} mm"
               + (f"; 95 % CI {ci[0]:+.1f} to {ci[1]:+.1f}°" if ci else "") + ")")
    if ci is None:
        return Suggestion(side=None, answer="cannot tell", certain=False, **common,
                          text=f"Heel lift: cannot tell — {numbers}, without a confidence interval.")
    if ci[0] >= OBLIQUITY_FROM_DEG or ci[1] <= -OBLIQUITY_FROM_DEG:
        return Suggestion(side=short, answer=f"consider a {short} heel lift", certain=True, **common,
                          text=f"Consider a heel lift under the {short} heel: {numbers} points to a {short} "
                               "short leg. Measure the leg lengths before lifting (a 2D tilt cannot tell "
                               "structural from functional).")
    if -OBLIQUITY_FROM_DEG < ci[0] and ci[1] < OBLIQUITY_FROM_DEG:
        return Suggestion(side=None, answer="not indicated", certain=True, **common,
                          text=f"No heel lift indicated: {numbers}, within ±{OBLIQUITY_FROM_DEG:g}°.")
    return Suggestion(side=short, answer="cannot tell", certain=False, **common,
                      text=f"Heel lift: cannot tell — {numbers} straddles ±{OBLIQUITY_FROM_DEG:g}°.")


def suggestions(report: dict) -> list[Suggestion]:
    """Every suggestion a report allows: per side foot type and shoe (needs the rear view),
    then the heel lift (needs the rear or front view). Missing measures give none."""
    fs = ((report.get("kinematics") or {}).get("frontal_summary") or {}) if isinstance(report, dict) else {}
    out: list[Suggestion] = []
    rearfoot = fs.get("rearfoot_eversion_2d_deg")
    if isinstance(rearfoot, dict):
        for side in ("left", "right"):
            if isinstance(rearfoot.get(side), dict):
                foot = foot_type(side, rearfoot[side])
                out += [foot, shoe(side, foot)]
    obliquity = fs.get("pelvic_obliquity_2d_deg")
    if isinstance(obliquity, dict):
        out.append(heel_lift(obliquity))
    return out
