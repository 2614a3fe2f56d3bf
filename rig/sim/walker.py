"""Simulated walker: a kinematic person on the treadmill, seen by the rig's four cameras as
33 BlazePose landmarks per frame, with known ground truth.

The model (details and conventions in ``docs/walker.md``):

- **Anthropometrics** from height: Winter 2009, *Biomechanics and Motor Control of Human
  Movement*, 4th ed., segment lengths as fractions of height.
- **Events**: per foot, heel strikes (heel contact) and toe-offs (toe leaves the belt)
  from cadence, stance fraction, a limp (stance-% and step-time asymmetry) and a seeded
  stride-to-stride variability (:mod:`rig.sim._schedule`).
- **Feet**: in stance the contact point is fixed to the belt and moves back at exactly the
  belt speed (heel rocker, foot flat, heel off, toe-off; Perry 2010, *Gait Analysis*);
  swing is C1 and decelerates in terminal swing so the heel is farthest forward shortly
  before contact, which is the event Zeni et al. 2008 (coordinate method, treadmill) find
  within about one frame at 60 Hz (:mod:`rig.sim._body`).
- **Pelvis** height from the stance legs (knee-flexion target in stance), fore-aft
  braking oscillation, lateral sway, transverse rotation, contralateral drop in stance,
  static obliquity; knees by 2-link inverse kinematics; arms swing opposite the legs.
- **Cameras**: pinhole, 1456x1088 px, f = 1300 px, 3 m away (:mod:`rig.sim._camera`).
- **Artefacts**: landmark noise, missing-frame runs, left/right swap runs in side views,
  deterministic in (seed, view, frame index) (:mod:`rig.sim._artifacts`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rig.keypoints import VIEWS, KeypointHeader, KeypointTrack, write_track

from ._artifacts import Artifacts
from ._body import SWAP_PERMUTATION
from ._camera import Camera, camera_coords, default_cameras, project, unproject_x_to_world
from ._schedule import Schedule
from ._skeleton import Skeleton

SIDE_VIEWS = ("left", "right")
_LAT = {"left": 1.0, "right": -1.0}


@dataclass(frozen=True)
class WalkerParams:
    """Knobs of the simulated walker; units in the names.

    Sign conventions: ``*_asymmetry`` are right minus left; ``pelvic_obliquity_deg`` > 0
    means the left hip is higher (the right leg is shorter); ``pelvic_drop_left_deg`` is
    the peak drop of the right side of the pelvis during left stance (and vice versa);
    ``rearfoot_eversion_*_deg`` > 0 is eversion (pronation): the heel-ankle line tilted
    laterally against the shank in the rear view.
    """

    cadence_steps_per_min: float = 110.0
    belt_speed_m_s: float = 1.2
    stance_pct: float = 62.0
    stance_pct_asymmetry: float = 0.0  # right minus left stance, % of cycle
    step_time_asymmetry_pct: float = 0.0  # symmetry index of step time, (R-L)/mean*100
    stride_time_cv_pct: float = 2.0
    rearfoot_eversion_left_deg: float = 4.0
    rearfoot_eversion_right_deg: float = 4.0
    pelvic_drop_left_deg: float = 4.0
    pelvic_drop_right_deg: float = 4.0
    pelvic_obliquity_deg: float = 0.0
    noise_px: float = 0.0
    missing_fraction: float = 0.0
    missing_run_s: float = 0.05  # mean length of a run of missing frames
    swap_fraction: float = 0.0  # side views only
    swap_run_s: float = 0.15  # mean length of a left/right label-swap run
    height_m: float = 1.75
    contact_pitch_deg: float = 18.0  # foot pitch (toes up) at initial contact; 0 = flat-foot landing
    standing: bool = False  # belt stopped, patient standing still with small sway

    def __post_init__(self) -> None:
        for name, lo, hi in _RANGES:
            v = getattr(self, name)
            if not (lo <= v <= hi):
                raise ValueError(f"WalkerParams.{name} = {v!r} is outside [{lo}, {hi}]")
        t = 120.0 / self.cadence_steps_per_min
        a = self.step_time_asymmetry_pct / 200.0
        step_r, step_l = t / 2 * (1 + a), t / 2 * (1 - a)
        st_r = (self.stance_pct + self.stance_pct_asymmetry / 2) / 100
        st_l = (self.stance_pct - self.stance_pct_asymmetry / 2) / 100
        if st_l * t <= step_r + 0.01 * t or st_r * t <= step_l + 0.01 * t:
            raise ValueError(
                "WalkerParams: stance_pct with its asymmetry and the step times leave no double "
                f"support (left stance {st_l * t:.3f} s vs right step {step_r:.3f} s, right stance "
                f"{st_r * t:.3f} s vs left step {step_l:.3f} s)")
        if max(st_l, st_r) >= 0.9:
            raise ValueError("WalkerParams: stance_pct plus half its asymmetry must stay below 90")


_RANGES = [
    ("cadence_steps_per_min", 40.0, 200.0), ("belt_speed_m_s", 0.1, 3.0), ("stance_pct", 50.0, 85.0),
    ("stance_pct_asymmetry", -20.0, 20.0), ("step_time_asymmetry_pct", -40.0, 40.0),
    ("stride_time_cv_pct", 0.0, 10.0), ("rearfoot_eversion_left_deg", -20.0, 20.0),
    ("rearfoot_eversion_right_deg", -20.0, 20.0), ("pelvic_drop_left_deg", 0.0, 15.0),
    ("pelvic_drop_right_deg", 0.0, 15.0), ("pelvic_obliquity_deg", -10.0, 10.0), ("noise_px", 0.0, 50.0),
    ("missing_fraction", 0.0, 0.9), ("missing_run_s", 0.001, 5.0), ("swap_fraction", 0.0, 0.5),
    ("swap_run_s", 0.001, 5.0), ("height_m", 1.2, 2.2), ("contact_pitch_deg", 0.0, 25.0),
]


def symmetry_index_pct(right: float, left: float) -> float:
    """(R - L) / (0.5 (R + L)) * 100; NaN when undefined."""
    mean = 0.5 * (right + left)
    return float("nan") if not mean or math.isnan(mean) else 100.0 * (right - left) / mean


@dataclass(frozen=True)
class GaitTruth:
    """Ground truth of a time window [t0_s, t1_s] on the frames' ``t`` clock.

    Events are the exact model times (not frame times). Per-side means use the strides
    and steps that lie wholly inside the window; a left step ends with a left heel strike
    and starts at the right heel strike before it. Undefined values (standing, too short
    a window) are NaN, never made up.
    """

    t0_s: float
    t1_s: float
    standing: bool
    heel_strike_s: dict[str, np.ndarray]
    toe_off_s: dict[str, np.ndarray]
    cadence_steps_per_min: float
    stance_pct: dict[str, float]
    swing_pct: dict[str, float]
    step_time_s: dict[str, float]
    stride_time_s: dict[str, float]
    stride_time_cv_pct: dict[str, float]
    double_support_pct: float
    belt_speed_m_s: float
    walking_speed_m_s: float
    step_length_m: dict[str, float]  # belt speed x step time
    stride_length_m: dict[str, float]
    n_strides: dict[str, int]
    symmetry_index_pct: dict[str, float]  # per measure: stance_pct, step_time_s, ...
    rearfoot_eversion_deg: dict[str, float]
    pelvic_obliquity_deg: float  # static, + = left hip higher
    pelvic_drop_deg: dict[str, float]  # side = stance side; contralateral peak drop
    height_m: float
    params: WalkerParams = field(repr=False, default=None)


class SimulatedWalker:
    """A walker on the treadmill rendered for the rig's four views.

    Parameters
    ----------
    params : the knobs. fps : frame (trigger) rate; frame ``i`` is at ``t = i / fps``.
    seed : all randomness (stride variability, drift, artefacts) derives from it.
    cameras : optional per-view :class:`Camera` overrides.
    artifact_seed : seed of the pose-model artefacts only (noise, missing frames, swaps);
        default ``seed``. Another value re-records the same walk with fresh measurement
        error (repeatability, ``benchmarks/bench_repeatability.py``).

    Attributes
    ----------
    cameras_ : dict view -> Camera. facing_ : dict side view -> "left"/"right".
    """

    def __init__(self, params: WalkerParams, fps: float = 60.0, seed: int = 0,
                 cameras: dict[str, Camera] | None = None, artifact_seed: int | None = None) -> None:
        if not (0 < fps <= 10000):
            raise ValueError(f"fps must be in (0, 10000], got {fps}")
        self.params = params
        self.fps = float(fps)
        self.seed = int(seed)
        self.cameras_ = {**default_cameras(), **(cameras or {})}
        self.facing_ = {v: self.cameras_[v].facing for v in SIDE_VIEWS}
        self._skeleton = Skeleton(params, None, self.seed)
        self._schedule = Schedule(params, self.seed, self._skeleton.drift_x)
        self._skeleton.sched = self._schedule
        self._artifacts = Artifacts(self.seed if artifact_seed is None else int(artifact_seed))
        self._world_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._swap_len = max(1, round(params.swap_run_s * self.fps))
        self._miss_len = max(1, round(params.missing_run_s * self.fps))

    # --- geometry -----------------------------------------------------------------------
    def world(self, index: np.ndarray) -> np.ndarray:
        """(n, 33, 3) clean landmarks on the treadmill frame (m) for frame indices."""
        return self._world(index)[0]

    def _world(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World landmarks (n, 33, 3) and the same component first (3, n, 33); the last
        batch is cached so the four views share one skeleton."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        c = self._world_cache
        if c is not None and c[0].shape == index.shape and np.array_equal(c[0], index):
            return c[1], c[2]
        if len(index) and index.min() < 0:
            raise ValueError("frame indices must be >= 0")
        w = self._skeleton.world(index.astype(np.float64) / self.fps)
        self._evert(w)
        wt = np.ascontiguousarray(w.transpose(2, 0, 1))
        w.flags.writeable = False  # shared by the views (and cached)
        if len(index) > 1:
            self._world_cache = (index.copy(), w, wt)
        return w, wt

    def _evert(self, w: np.ndarray) -> None:
        """Place each heel so that, in the rear view, the heel-ankle line makes the
        eversion angle with the knee-ankle (shank) line (image-plane angle, as measured)."""
        cam = self.cameras_["rear"]
        p = self.params
        img = project_points(cam, w[:, [25, 27, 29, 26, 28, 30]])  # knee, ankle, heel L then R
        for k, (side, ev, ih) in enumerate((("left", p.rearfoot_eversion_left_deg, 29),
                                            ("right", p.rearfoot_eversion_right_deg, 30))):
            kx, ky = img[:, 3 * k, 0], img[:, 3 * k, 1]
            ax, ay = img[:, 3 * k + 1, 0], img[:, 3 * k + 1, 1]
            hy = img[:, 3 * k + 2, 1]
            phi_shank = np.arctan2(ax - kx, ay - ky)  # from image-down, toward image +x
            # subject's left is image-left in the rear view: eversion turns the heel outward
            phi_heel = phi_shank - _LAT[side] * np.radians(ev)
            hx = ax + np.maximum(hy - ay, 0.0) * np.tan(phi_heel)
            w[:, ih, 1] = unproject_x_to_world(cam, hx, w[:, ih], axis=1)

    # --- rendering ------------------------------------------------------------------------
    def clean_landmarks(self, view: str, index: np.ndarray) -> np.ndarray:
        """(n, 33, 4) [x_px, y_px, z, visibility] without noise, swaps or missing frames."""
        return project(self._camera(view), self._world(index)[1])

    def landmarks(self, view: str, index: np.ndarray) -> np.ndarray:
        """(n, 33, 4) as a pose model reports them; NaN rows for frames with nobody."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        lm = self.clean_landmarks(view, index)
        p = self.params
        if view in SIDE_VIEWS and p.swap_fraction > 0:
            sw = self._artifacts.swapped(view, index, p.swap_fraction, self._swap_len)
            lm[sw] = lm[sw][:, SWAP_PERMUTATION]
        if p.noise_px > 0:
            lm[..., :2] += p.noise_px * self._artifacts.noise(view, index)
        if p.missing_fraction > 0:
            lm[self._artifacts.missing(view, index, p.missing_fraction, self._miss_len)] = np.nan
        return lm

    def swapped(self, view: str, index: np.ndarray) -> np.ndarray:
        """Boolean (n,): frames whose left/right labels are swapped (side views)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if view not in SIDE_VIEWS or self.params.swap_fraction <= 0:
            return np.zeros(len(index), bool)
        return self._artifacts.swapped(view, index, self.params.swap_fraction, self._swap_len)

    def missing(self, view: str, index: np.ndarray) -> np.ndarray:
        """Boolean (n,): frames where nobody is found."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        return self._artifacts.missing(view, index, self.params.missing_fraction, self._miss_len)

    def render(self, index: np.ndarray, views=VIEWS) -> dict[str, np.ndarray]:
        """All requested views for the same frames (the skeleton is computed once)."""
        return {v: self.landmarks(v, index) for v in views}

    def frame(self, view: str, index: int) -> np.ndarray:
        """One frame (33, 4), e.g. for a live simulated camera node."""
        return self.landmarks(view, np.array([index]))[0]

    def n_frames(self, duration_s: float) -> int:
        return int(round(duration_s * self.fps))

    def track(self, view: str, duration_s: float) -> KeypointTrack:
        """Frames 0..n-1 of one view as a :class:`KeypointTrack`."""
        index = np.arange(self.n_frames(duration_s), dtype=np.int64)
        return KeypointTrack(self.header(view), index, index / self.fps, self.landmarks(view, index))

    def header(self, view: str) -> KeypointHeader:
        cam = self._camera(view)
        extra = {"simulated": True, "source": "rig.sim.walker", "seed": self.seed,
                 "walker_params": asdict(self.params)}
        return KeypointHeader(view=view, fps=self.fps, width=cam.width_px, height=cam.height_px,
                              facing=cam.facing, extra=extra)

    def write(self, directory: Path | str, duration_s: float, views=VIEWS,
              chunk_frames: int = 6000) -> dict[str, Path]:
        """One ``gaitrig-keypoints/1`` file per view, ``<directory>/<view>.jsonl``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        n, paths = self.n_frames(duration_s), {}
        for view in views:
            def frames(view=view):
                for a in range(0, n, chunk_frames):
                    idx = np.arange(a, min(a + chunk_frames, n), dtype=np.int64)
                    lm = self.landmarks(view, idx)
                    for k, i in enumerate(idx):
                        yield int(i), i / self.fps, lm[k]
            paths[view] = directory / f"{view}.jsonl"
            write_track(paths[view], self.header(view), frames())
        return paths

    def _camera(self, view: str) -> Camera:
        if view not in self.cameras_:
            raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
        return self.cameras_[view]

    # --- ground truth -----------------------------------------------------------------------
    def truth(self, t0_s: float, t1_s: float) -> GaitTruth:
        """Events and parameters within [t0_s, t1_s]; see :class:`GaitTruth`."""
        p = self.params
        common = dict(t0_s=float(t0_s), t1_s=float(t1_s), standing=p.standing, height_m=p.height_m,
                      rearfoot_eversion_deg={"left": p.rearfoot_eversion_left_deg,
                                             "right": p.rearfoot_eversion_right_deg},
                      pelvic_obliquity_deg=p.pelvic_obliquity_deg, params=p)
        if p.standing:
            return _standing_truth(common)
        sc = self._schedule
        sc.ensure(t1_s)
        return _walking_truth(sc, p, t0_s, t1_s, common)


def project_points(cam: Camera, pts: np.ndarray) -> np.ndarray:
    """(n, k, 3) world -> (n, k, 2) image px."""
    xc, yc, zc = camera_coords(cam, [pts[..., 0], pts[..., 1], pts[..., 2]])
    f, cx, cy = cam.focal_px, cam.width_px / 2.0, cam.height_px / 2.0
    return np.stack([cx + xc * (f / zc), cy + yc * (f / zc)], -1)


def _nan_sides():
    return {"left": float("nan"), "right": float("nan")}


def _standing_truth(common) -> GaitTruth:
    empty = {"left": np.empty(0), "right": np.empty(0)}
    return GaitTruth(heel_strike_s=empty, toe_off_s=dict(empty), cadence_steps_per_min=float("nan"),
                     stance_pct=_nan_sides(), swing_pct=_nan_sides(), step_time_s=_nan_sides(),
                     stride_time_s=_nan_sides(), stride_time_cv_pct=_nan_sides(),
                     double_support_pct=float("nan"), belt_speed_m_s=0.0, walking_speed_m_s=0.0,
                     step_length_m=_nan_sides(), stride_length_m=_nan_sides(),
                     n_strides={"left": 0, "right": 0}, symmetry_index_pct={},
                     pelvic_drop_deg={"left": 0.0, "right": 0.0}, **common)


def _mean(x) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _walking_truth(sc: Schedule, p: WalkerParams, t0: float, t1: float, common) -> GaitTruth:
    hs, to, e = sc.hs, sc.to, sc.all_hs
    events_hs = {s: hs[s][(hs[s] >= t0) & (hs[s] <= t1)] for s in ("left", "right")}
    events_to = {s: to[s][(to[s] >= t0) & (to[s] <= t1)] for s in ("left", "right")}
    stance, stride, cv, ds, n_str = {}, {}, {}, [], {}
    for side, other in (("left", "right"), ("right", "left")):
        h = hs[side]
        i = np.nonzero((h[:-1] >= t0) & (h[1:] <= t1))[0]
        dur = h[i + 1] - h[i]
        stance[side] = _mean(100 * (to[side][i] - h[i]) / dur)
        stride[side] = _mean(dur)
        cv[side] = float(100 * np.std(dur, ddof=1) / np.mean(dur)) if len(i) > 1 else float("nan")
        n_str[side] = int(len(i))
        # double support: both feet on the belt within each stride of this foot
        ho = hs[other]
        j = np.searchsorted(ho, h[i], side="right") - 1  # other foot's stride in progress at HS
        ds1 = to[other][j] - h[i]
        ds2 = to[side][i] - ho[j + 1]
        ds.extend(100 * (ds1 + ds2) / dur)
    k = np.nonzero((e[:-1] >= t0) & (e[1:] <= t1))[0] + 1  # step k ends at E[k]
    steps = e[k] - e[k - 1]
    step = {"right": _mean(steps[k % 2 == 0]), "left": _mean(steps[k % 2 == 1])}
    v = p.belt_speed_m_s
    step_len = {s: v * step[s] for s in step}
    stride_len = {s: v * stride[s] for s in stride}
    measures = {"stance_pct": stance, "step_time_s": step, "stride_time_s": stride,
                "step_length_m": step_len}
    return GaitTruth(
        heel_strike_s=events_hs, toe_off_s=events_to,
        cadence_steps_per_min=60.0 / _mean(steps) if len(steps) else float("nan"),
        stance_pct=stance, swing_pct={s: 100 - stance[s] for s in stance}, step_time_s=step,
        stride_time_s=stride, stride_time_cv_pct=cv, double_support_pct=_mean(ds),
        belt_speed_m_s=v, walking_speed_m_s=v, step_length_m=step_len, stride_length_m=stride_len,
        n_strides=n_str,
        symmetry_index_pct={m: symmetry_index_pct(d["right"], d["left"]) for m, d in measures.items()},
        pelvic_drop_deg={"left": p.pelvic_drop_left_deg, "right": p.pelvic_drop_right_deg}, **common)
