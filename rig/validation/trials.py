"""Real walking trials with reference events, loaded from the set-up-time cache.

Each trial becomes a :class:`RealTrial`: marker trajectories in metres on the rig's
treadmill frame (x forward, y to the walker's left, z up, the belt moving toward -x),
the native frame rate, and reference events (initial contact, foot off) per side with
where they come from. Overground trials are moved into the treadmill frame by subtracting
the mean walking velocity, which turns the ground into a belt at that speed.

Sources (docs/validation.md says what each marker stands for and what was dropped):

- ``treadmill``: GaitAnalysisToolKit 0.2.0's 2D inverse-dynamics test record (Moore and
  van den Bogert's instrumented treadmill, subject 7 of the HBM data): right-leg sagittal
  markers at 100 Hz with the force plate under that foot. Reference = vertical force
  crossing 20 N (the plate's events). The left leg is the same leg's record half a stride
  later (the record has one leg), with the plate's events moved with it.
- ``healthy``, ``parkinson``: gaitkit 1.5.0's example trials (Fukuchi et al. 2018 overground
  at 150 Hz; a Parkinson's patient from PhysioNet at 150 Hz) with annotated events. Every
  annotated event is judged against the markers (:func:`judge_event`); events the markers
  contradict are dropped and listed with the reason.
- ``stroke``: gaitkit's stroke survivor (Van Criekinge et al. 2023, 100 Hz) has no events:
  it is analysed (robustness) but not scored.
- gaitkit's ``kuopio`` example is not used: every landmark in it is (0, 0, 0).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_models.fetch import validation_path

SIDES = ("left", "right")
MARKERS = ("hip", "knee", "ankle", "heel", "toe", "shoulder")
PLATE_THRESHOLD_N = 20.0


@dataclass(frozen=True)
class DroppedEvent:
    """A reference event left out of the scoring, and why."""

    side: str
    kind: str  # "ic" or "fo"
    time_s: float
    reason: str


@dataclass(frozen=True)
class Reference:
    """Reference event times per side on the trial's clock (s)."""

    ic_s: dict[str, np.ndarray]
    fo_s: dict[str, np.ndarray]
    source: str
    dropped: tuple[DroppedEvent, ...] = ()

    @property
    def n_events(self) -> int:
        return sum(len(self.ic_s[s]) + len(self.fo_s[s]) for s in SIDES)

    def shifted(self, dt_s: float) -> "Reference":
        return Reference({s: v + dt_s for s, v in self.ic_s.items()},
                         {s: v + dt_s for s, v in self.fo_s.items()}, self.source, self.dropped)


@dataclass(frozen=True)
class LabOutput:
    """The lab model's angles (deg, as the file has them) per (side, name), sampled at the
    trial's frames, and which model made them (rig.validation.c3d_trials); ``frames`` the
    model's own segment axes per (side, segment) where the file keeps them ((n, 3, 3),
    rows X anterior, Y, Z proximal, in the lab's axes): what its angles were computed from."""

    model: str
    angles_deg: dict[tuple[str, str], np.ndarray]
    frames: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class RealTrial:
    """One real recording on the treadmill frame.

    ``markers[(side, name)]`` is (n, 3) metres; ``name`` in :data:`MARKERS`. ``t_s`` starts
    at 0. ``reference`` is None for trials without events (analysed, not scored).
    ``marker_for`` names the physical marker (or derived point) behind each landmark.
    """

    name: str
    description: str
    source: str
    setting: str  # "treadmill" or "overground (moved into the treadmill frame)"
    native_fps: float
    t_s: np.ndarray
    markers: dict[tuple[str, str], np.ndarray]
    belt_speed_m_s: float
    reference: Reference | None
    marker_for: dict[str, str] = field(default_factory=dict)
    lab: LabOutput | None = None  # the lab model's own output, where the file carries it

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1])


# --------------------------------------------------------------------- treadmill + plate

_TREADMILL_FILE = "gatk_treadmill_rawdata.txt"
# columns of rawdata.txt (metres, sagittal X forward / Y up; FP2 force in N)
_GATK_COLUMNS = {"shoulder": 1, "hip": 3, "knee": 5, "ankle": 7, "heel": 9, "toe": 11}
_GATK_FY = 14
_GATK_LATERAL_M = {"shoulder": 0.18, "hip": 0.09, "knee": 0.09, "ankle": 0.09, "heel": 0.09, "toe": 0.10}
_HALF_STRIDE_FRAMES = 60  # half of the plate's mean stride (1.195 s) at 100 Hz


def plate_events(t_s: np.ndarray, force_n: np.ndarray, threshold_n: float = PLATE_THRESHOLD_N):
    """(contact_s, off_s): times the vertical force crosses ``threshold_n`` upward and
    downward, linearly interpolated between samples."""
    above = force_n > threshold_n
    i = np.flatnonzero(np.diff(above.astype(int)))
    frac = (threshold_n - force_n[i]) / (force_n[i + 1] - force_n[i])
    t = t_s[i] + frac * (t_s[i + 1] - t_s[i])
    rising = above[i + 1]
    return t[rising], t[~rising]


def _load_treadmill(path: Path) -> RealTrial:
    d = np.loadtxt(path, comments="%")
    t_all = d[:, 0] - d[0, 0]
    for col in range(1, d.shape[1]):  # a few marker samples are missing (NaN): bridged linearly
        bad = np.isnan(d[:, col])
        if bad.any():
            d[bad, col] = np.interp(t_all[bad], t_all[~bad], d[~bad, col])
    fps = round(1.0 / float(np.median(np.diff(t_all))))
    ic, fo = plate_events(t_all, d[:, _GATK_FY])
    n = len(t_all) - _HALF_STRIDE_FRAMES
    shift_s = _HALF_STRIDE_FRAMES / fps
    markers = {}
    for name, col in _GATK_COLUMNS.items():
        xz = d[:, col:col + 2]
        for side, lag, lat in (("right", 0, -1.0), ("left", _HALF_STRIDE_FRAMES, 1.0)):
            seg = xz[lag:lag + n]
            markers[(side, name)] = np.column_stack([seg[:, 0], np.full(n, lat * _GATK_LATERAL_M[name]), seg[:, 1]])
    _centre(markers)
    t = t_all[:n]
    stance = d[:, _GATK_FY] > 200.0
    v_heel = np.gradient(d[:, _GATK_COLUMNS["heel"]], t_all)
    belt = float(-np.median(v_heel[stance]))
    end = t[-1]
    ref = Reference(
        ic_s={"right": ic[ic <= end], "left": (ic - shift_s)[(ic - shift_s >= 0) & (ic - shift_s <= end)]},
        fo_s={"right": fo[fo <= end], "left": (fo - shift_s)[(fo - shift_s >= 0) & (fo - shift_s <= end)]},
        source=f"force plate, vertical force crossing {PLATE_THRESHOLD_N:g} N (interpolated)",
        dropped=tuple([DroppedEvent("right", k, float(x), "after the end of the left leg's copy")
                       for k, arr in (("ic", ic), ("fo", fo)) for x in arr if x > end]
                      + [DroppedEvent("left", k, float(x - shift_s), "before the start of the left leg's copy")
                         for k, arr in (("ic", ic), ("fo", fo)) for x in arr if x - shift_s < 0]))
    return RealTrial(
        name="treadmill", description="Healthy adult on an instrumented treadmill, right-leg plate",
        source="GaitAnalysisToolKit 0.2.0 (Moore, van den Bogert; Cleveland State HMC lab), "
               "gaitanalysis/octave/2d_inverse_dynamics/test/rawdata.txt",
        setting="treadmill", native_fps=float(fps), t_s=t, markers=markers, belt_speed_m_s=belt,
        reference=ref,
        marker_for={"shoulder": "RSHO (acromion)", "hip": "RGTRO (greater trochanter)",
                    "knee": "RLEK (lateral femoral epicondyle)", "ankle": "RLM (lateral malleolus)",
                    "heel": "RHEE (posterior calcaneus)", "toe": "RMT5 (5th metatarsal head)",
                    "left leg": f"right leg {shift_s:.2f} s later, mirrored (the record has one leg)"})


# --------------------------------------------------------------------- gaitkit examples

_GAITKIT = {
    "healthy": ("gaitkit_example_healthy.json", "Fukuchi et al. 2018, PeerJ (CC-BY 4.0), via gaitkit 1.5.0"),
    "parkinson": ("gaitkit_example_parkinson.json", "PhysioNet Gait in Parkinson's disease (ODC-By 1.0), via gaitkit 1.5.0"),
    "stroke": ("gaitkit_example_stroke.json", "Van Criekinge et al. 2023, Sci Data (CC-BY 4.0), via gaitkit 1.5.0"),
}
# judge_event thresholds: foot ground speed (slowest of heel and toe, m/s) 50 ms either side
JUDGE_LAG_S = 0.05
JUDGE_MOVING_M_S = 0.5  # the moving side of the event must be at least this fast
JUDGE_RATIO = 3.0  # and this many times faster than the planted side


def foot_ground_speed(t_s: np.ndarray, heel: np.ndarray, toe: np.ndarray) -> np.ndarray:
    """Horizontal speed (m/s) of the slower of heel and toe on the ground frame (overground
    coordinates), smoothed over ~30 ms: ~0 while any part of the foot is planted."""
    dt = float(np.median(np.diff(t_s)))
    k = max(1, int(round(0.03 / dt)) | 1)
    speeds = []
    for p in (heel, toe):
        v = np.hypot(np.gradient(p[:, 0], t_s), np.gradient(p[:, 1], t_s))
        speeds.append(np.convolve(np.pad(v, k // 2, mode="edge"), np.ones(k) / k, mode="valid"))
    return np.minimum(*speeds)


def judge_event(kind: str, time_s: float, t_s: np.ndarray, speed: np.ndarray) -> str | None:
    """None if the markers agree with the event, else the reason to drop it.

    An initial contact must end a moving foot: 50 ms before it the foot's ground speed is
    above ``JUDGE_MOVING_M_S`` and ``JUDGE_RATIO`` times its speed 50 ms after (the heel
    rocker keeps the foot from stopping at once); a foot off the reverse. Annotations that
    fail are not events of that kind at that time (mid-swing, mid-stance, duplicates)."""
    before = time_s - JUDGE_LAG_S
    after = time_s + JUDGE_LAG_S
    if before < t_s[0] or after > t_s[-1]:
        return "too near the recording's edge to check against the markers"
    v0, v1 = np.interp([before, after], t_s, speed)
    if kind == "ic" and not (v0 > JUDGE_MOVING_M_S and v0 > JUDGE_RATIO * v1):
        return f"markers disagree: foot speed {v0:.2f} m/s before and {v1:.2f} m/s after (a contact stops a moving foot)"
    if kind == "fo" and not (v1 > JUDGE_MOVING_M_S and v1 > JUDGE_RATIO * v0):
        return f"markers disagree: foot speed {v0:.2f} m/s before and {v1:.2f} m/s after (a foot off starts a planted foot)"
    return None


def _axes(raw: dict[tuple[str, str], np.ndarray], t_s: np.ndarray):
    """(rotation rows [forward, left, up], forward velocity m/s) of an overground trial."""
    hips = 0.5 * (raw[("left", "hip")] + raw[("right", "hip")])
    ank = 0.5 * (raw[("left", "ankle")] + raw[("right", "ankle")])
    up_k = int(np.argmax(np.mean(hips - ank, axis=0)))
    up = np.zeros(3)
    up[up_k] = 1.0
    slope = np.polyfit(t_s, hips, 1)[0]
    slope[up_k] = 0.0
    speed = float(np.linalg.norm(slope))
    fwd = slope / speed
    left = np.cross(up, fwd)
    rot = np.stack([fwd, left, up])
    if np.mean((raw[("left", "hip")] - raw[("right", "hip")]) @ left) <= 0:
        raise ValueError("left/right markers are mirrored against the walking direction")
    return rot, speed


def _load_gaitkit(key: str, path: Path) -> RealTrial:
    doc = json.loads(path.read_text(encoding="utf-8"))
    fps = float(doc["fps"])
    frames = doc["angle_frames"]
    t = np.arange(len(frames)) / fps
    raw = {(s, m): np.array([f["landmark_positions"][f"{s}_{m}"] for f in frames], float) / 1000.0
           for s in SIDES for m in MARKERS}
    rot, speed = _axes(raw, t)
    markers = {}
    for k, p in raw.items():
        q = p @ rot.T
        markers[k] = q - np.column_stack([speed * t, np.zeros_like(t), np.zeros_like(t)])
    ground = {k: p @ rot.T for k, p in raw.items()}
    _centre(markers)
    gt = doc.get("ground_truth") or {}
    ref = None
    if gt.get("hs_frames") or gt.get("to_frames"):
        ic, fo, dropped = {}, {}, []
        for side in SIDES:
            speed_side = foot_ground_speed(t, ground[(side, "heel")], ground[(side, "toe")])
            for kind, key_gt, out in (("ic", "hs_frames", ic), ("fo", "to_frames", fo)):
                kept = []
                for fr in (gt.get(key_gt) or {}).get(side, []):
                    why = judge_event(kind, fr / fps, t, speed_side)
                    if why is None:
                        kept.append(fr / fps)
                    else:
                        dropped.append(DroppedEvent(side, kind, fr / fps, why))
                out[side] = np.array(sorted(kept))
        ref = Reference(ic, fo, f"annotated ({gt.get('event_source', 'unknown')}), judged against the markers",
                        tuple(dropped))
    return RealTrial(
        name=key, description=doc.get("description", key), source=_GAITKIT[key][1],
        setting="overground (moved into the treadmill frame)", native_fps=fps, t_s=t, markers=markers,
        belt_speed_m_s=speed, reference=ref,
        marker_for={m: f"gaitkit '<side>_{m}'" for m in MARKERS})


def _centre(markers: dict[tuple[str, str], np.ndarray]) -> None:
    """Origin under the mean hip midpoint, z = 0 one marker radius below the lowest foot marker."""
    hips = 0.5 * (markers[("left", "hip")] + markers[("right", "hip")])
    cx, cy = float(np.mean(hips[:, 0])), float(np.mean(hips[:, 1]))
    floor = min(float(np.percentile(markers[(s, m)][:, 2], 1)) for s in SIDES for m in ("heel", "toe")) - 0.01
    for k in markers:
        markers[k] = markers[k] - np.array([cx, cy, floor])


def load_trial(name: str, directory: Path | None = None) -> RealTrial:
    """One trial by name (``treadmill``, ``healthy``, ``parkinson``, ``stroke``, or a lab-model
    trial of :data:`rig.validation.c3d_trials.LAB_TRIAL_NAMES` or ``STANDING_TRIAL_NAMES``) from the cache (``gaitrig
    models fetch`` puts it there); ModelMissingError if it is not cached."""
    from .c3d_trials import LAB_TRIAL_NAMES, STANDING_TRIAL_NAMES, load_c3d_trial
    if name in LAB_TRIAL_NAMES + STANDING_TRIAL_NAMES:
        return load_c3d_trial(name, directory)
    if name == "treadmill":
        return _load_treadmill(validation_path(_TREADMILL_FILE, directory))
    if name in _GAITKIT:
        return _load_gaitkit(name, validation_path(_GAITKIT[name][0], directory))
    raise KeyError(f"unknown trial {name!r}; known: treadmill, {', '.join(_GAITKIT)}, {', '.join(LAB_TRIAL_NAMES)}")


# the converted marker recordings (the 3D checks take these and LAB_TRIAL_NAMES apart)
TRIAL_NAMES = ("treadmill", "healthy", "parkinson", "stroke")
# the event validation set (tests/test_gait_real.py and bench_events_real.py score it): the
# marker recordings and the split-belt plate trial, whose plate events are judged like the
# others' (rig.validation.c3d_trials); ofm_overground has no events and is left out
EVENT_TRIAL_NAMES = TRIAL_NAMES + ("pig_treadmill",)


def load_trials(directory: Path | None = None, names: tuple[str, ...] = TRIAL_NAMES) -> list[RealTrial]:
    """The named trials (default the marker recordings, :data:`TRIAL_NAMES`; the event set
    is :data:`EVENT_TRIAL_NAMES`), in that order."""
    return [load_trial(n, directory) for n in names]
