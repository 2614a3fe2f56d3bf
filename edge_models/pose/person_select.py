"""Is this body the patient? One target, followed by motion, size and appearance.

The belt ROI (:mod:`edge_models.pose.selection`) only says where a patient may stand. A
clinician passing in front of the treadmill stands on the belt *in the image*, and the
landmark model, given a crop with two bodies, fits whichever is more salient — the nearer
one. So the tracker also keeps a model of the patient, as single-target
tracking-by-detection does (SORT: Bewley et al. 2016, constant-velocity prediction and a
gate around it; DeepSORT: Wojke et al. 2017, an appearance descriptor learned from the
target's own confident frames and compared before association; colour histograms compared
with the Bhattacharyya coefficient: Comaniciu, Ramesh & Meer 2003, "Kernel-based object
tracking", IEEE TPAMI 25(5)). A body is the patient only if

- its hip centre is where the patient's motion puts it (a patient on a treadmill walks in
  place: their hips stay within a fraction of a torso length of where they were),
- on a treadmill (``walks_in_place``; the pipeline sets it when a belt ROI is drawn), its
  hip is within 0.3 torso of the patient's *home*, a slow average of their hip: a fit
  sliding onto a passer who overlaps the patient moves too slowly for the per-frame gate
  but steadily away from home (a real treadmill walker strayed at most 0.24 torso from it),
- its torso length is the patient's (someone nearer the camera looks larger), and
- its torso and thighs have the patient's colours (learned in the first confident frames),
  unless a keyframe node's optical flow followed this very body there from the patient's
  last fit, limb by limb: continuity, which a change of light does not move.

A body in front of the patient draws the landmark model onto itself even when most of the
patient still shows. Once such a fit is rejected, :func:`paint_out` covers that body (its
limbs, torso and head drawn thick in neutral grey — the pixels in front, so nothing of the
patient that the camera sees) and the model runs again on the patient's crop: an occluder
the model was trained to look past, as in occlusion augmentation.

When no body passes, the frame is "patient not visible": no landmarks rather than another
person's. The model survives that (the patient reappears where they were); only after
``forget_after`` consecutive misses is it dropped and the next confident body learned anew
(a new patient, or a first lock that was wrong).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import cv2
import numpy as np

SHOULDERS, HIPS, KNEES = (11, 12), (23, 24), (25, 26)
HIST_BINS = (8, 4, 4)  # hue, saturation, value: coarse, so lighting and pose barely move it
DESCRIPTOR_SIDE_PX = 96  # the torso region is resampled to about this before the histogram


class Verdict(Enum):
    PATIENT = "patient"
    MOVED = "not where the patient is"
    WANDERED = "not where a patient walking in place stays"
    SIZE = "not the patient's size"
    LOOKS = "not the patient's colours"


@dataclass(frozen=True)
class Body:
    """What the selector knows of one landmark fit, in image pixels."""

    hip_px: np.ndarray  # (2,) mid-hip
    torso_px: float  # mid-shoulder to mid-hip
    hist: np.ndarray | None  # normalised colour histogram, None: region outside the frame


def torso_length_px(landmarks: np.ndarray) -> float:
    shoulders = landmarks[list(SHOULDERS), :2].mean(axis=0)
    hips = landmarks[list(HIPS), :2].mean(axis=0)
    return float(np.linalg.norm(shoulders - hips))


def appearance(frame_bgr: np.ndarray, landmarks: np.ndarray,
               ignore: np.ndarray | None = None) -> np.ndarray | None:
    """HSV histogram of the torso (shoulders–hips quadrilateral) and thighs (hips–knees,
    a third of a torso wide): clothes and skin, the parts a bystander rarely shares. The
    region is cut, shrunk to about ``DESCRIPTOR_SIDE_PX`` and masked, so a 1080p frame
    costs well under a millisecond. None where there is no colour (a grayscale picture)."""
    h, w = frame_bgr.shape[:2]
    torso = torso_length_px(landmarks)
    pts = landmarks[[SHOULDERS[0], SHOULDERS[1], HIPS[1], HIPS[0], KNEES[0], KNEES[1]], :2]
    x0, y0 = np.floor(pts.min(axis=0) - torso / 6).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + torso / 6).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4 or not np.isfinite(torso) or torso < 4:
        return None
    k = max(1, int(max(x1 - x0, y1 - y0) // DESCRIPTOR_SIDE_PX))
    crop = frame_bgr[y0:y1:k, x0:x1:k]
    if (crop[..., 0] == crop[..., 1]).all() and (crop[..., 1] == crop[..., 2]).all():
        return None  # no colour to compare: a mono camera, or a grayscale crop from the disk spool
    mask = np.zeros(crop.shape[:2], np.uint8)
    to_crop = lambda i: np.round((landmarks[i, :2] - (x0, y0)) / k).astype(np.int32)  # noqa: E731
    quad = np.stack([to_crop(i) for i in (SHOULDERS[0], SHOULDERS[1], HIPS[1], HIPS[0])])
    cv2.fillConvexPoly(mask, quad, 1)
    thick = max(1, int(round(torso / 3 / k)))
    for hip, knee in zip(HIPS, KNEES):
        cv2.line(mask, tuple(int(v) for v in to_crop(hip)), tuple(int(v) for v in to_crop(knee)), 1, thick)
    if ignore is not None:
        mask[ignore[y0:y1:k, x0:x1:k]] = 0
    if mask.sum() < 16:
        return None
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return hist / hist.sum()


def describe(frame_bgr: np.ndarray, landmarks: np.ndarray, ignore: np.ndarray | None = None) -> Body:
    hip = landmarks[list(HIPS), :2].mean(axis=0)
    return Body(hip, torso_length_px(landmarks), appearance(frame_bgr, landmarks, ignore))


# BlazePose limbs (shoulders, arms, hips, legs, feet) that paint_out draws thick
LIMBS = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
         (23, 25), (25, 27), (24, 26), (26, 28), (27, 29), (29, 31), (27, 31), (28, 30), (30, 32), (28, 32))
PAINT_GREY = (128, 128, 128)


def paint_out(frame_bgr: np.ndarray, landmarks: np.ndarray, width_torso: float = 0.45
              ) -> tuple[np.ndarray, np.ndarray]:
    """A copy of the frame with one body covered in grey, and the covered pixels (bool).

    Limbs are drawn ``width_torso`` torso lengths wide, the torso filled, the head a disc
    round the nose: roughly the body's silhouette, a little generous."""
    torso = torso_length_px(landmarks)
    h, w = frame_bgr.shape[:2]
    painted = np.zeros((h, w), np.uint8)
    if not np.isfinite(landmarks[:, :2]).all() or not np.isfinite(torso) or torso < 2:
        return frame_bgr.copy(), painted.astype(bool)
    pt = lambda i: (int(round(landmarks[i, 0])), int(round(landmarks[i, 1])))  # noqa: E731
    thick = max(1, int(round(width_torso * torso)))
    out = frame_bgr.copy()
    for image, colour in ((painted, 1), (out, PAINT_GREY)):  # drawn on both: no full-frame masked write
        for a, b in LIMBS:
            cv2.line(image, pt(a), pt(b), colour, thick)
        cv2.fillConvexPoly(image, np.array([pt(11), pt(12), pt(24), pt(23)], np.int32), colour)
        cv2.circle(image, pt(0), max(1, int(round(0.4 * torso))), colour, -1)
    return out, painted.view(bool)


MAX_PAINTED_SHARE = 0.25  # a fit with more of its landmarks under the paint is a guess


def share_painted(landmarks: np.ndarray, covered: np.ndarray) -> float:
    """Share of the landmarks that lie on painted-out pixels (outside the frame: not painted).
    A fit found by looking past someone is kept only if most of it is on pixels the camera
    really saw: a patient half behind another person is "not visible", not reconstructed."""
    h, w = covered.shape
    xy = np.round(landmarks[:, :2]).astype(np.int64)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    on = covered[xy[inside, 1], xy[inside, 0]]
    return float(on.sum()) / len(landmarks)


GAIT_LANDMARKS = slice(23, 33)  # hips, knees, ankles, heels, toes
MAX_PAINTED_GAIT_SHARE = 0.2  # ...unless at most this share of these is under the paint


def seen_past(landmarks: np.ndarray, covered: np.ndarray) -> bool:
    """Whether a fit found by painting someone out stands on pixels the camera saw: most of
    its landmarks, or at least its hips, legs and feet — what gait analysis uses. A passer
    in front of the patient's chest covers half the landmarks (face, arms) while the legs
    show; a patient whose legs are behind someone is "not visible"."""
    return (share_painted(landmarks, covered) <= MAX_PAINTED_SHARE
            or share_painted(landmarks[GAIT_LANDMARKS], covered) <= MAX_PAINTED_GAIT_SHARE)


def body_box(landmarks: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of a fit's landmarks, image pixels."""
    return np.concatenate([landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)])


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two xyxy boxes share any area: another person's body over the patient's."""
    return bool(min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]))


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """sqrt(1 − Bhattacharyya coefficient): 0 same colours, 1 disjoint."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sqrt(p * q).sum()))))


@dataclass
class SelectorStats:
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {v.name.lower(): 0 for v in Verdict
                                                               if v is not Verdict.PATIENT})
    not_visible: int = 0  # frames reported as "patient not visible"
    relearned: int = 0  # models dropped after ``forget_after`` misses


@dataclass
class PatientSelector:
    """The patient's model: where (alpha–beta filtered hip), how big, which colours.

    >>> sel = PatientSelector()
    >>> body = describe(frame, landmarks)
    >>> if sel.check(body) is Verdict.PATIENT: sel.update(body)
    >>> else: sel.miss()          # nobody else passed either: "patient not visible"

    Distances are in torso lengths (the patient's own scale), so the gates hold at any
    camera distance. ``learn_frames`` confident frames build the colour model; until then
    only position and size are checked. ``forget_after`` consecutive misses drop the model.
    """

    max_jump_torso: float = 0.5  # gate on the hip's distance from its prediction, per frame
    gate_growth_torso: float = 0.25  # the gate widens by this per missed frame (patient moved unseen)
    max_gate_torso: float = 2.0
    max_size_ratio: float = 1.25  # torso length within [1/r, r] of the patient's
    max_colour_distance: float = 0.5  # Hellinger distance to the patient's histogram; a partly
    # hidden patient measured 0.25-0.49 on the scenes, the person in front of them 0.5-0.88
    walks_in_place: bool | None = None  # a treadmill patient (None: the pipeline decides from
    # its belt ROI); their hip stays near its slowly moving home, a passer's does not
    home_gain: float = 0.1  # per accepted fit; a patient's hip strayed <= 0.24 torso from it
    max_wander_torso: float = 0.3  # a fit drifting onto a passer strayed 0.33 within 12 frames
    learn_frames: int = 10
    forget_after: int = 90
    velocity_gain: float = 0.3  # beta of the alpha-beta filter (alpha is 1: the fit is precise)
    velocity_decay: float = 0.8  # per missed frame: a hidden patient is assumed to slow down
    stats: SelectorStats = field(default_factory=SelectorStats)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._hip: np.ndarray | None = None
        self._home: np.ndarray | None = None  # slow average of the hip (walks_in_place)
        self._velocity = np.zeros(2)
        self._torso = 0.0
        self._first_sizes: list[float] = []  # torso lengths of the first fits (size learned from their median)
        self._hist: np.ndarray | None = None
        self._learned = 0
        self._misses = 0
        self._tracked_shift: np.ndarray | None = None  # hip moved by optical flow since the last fit

    @property
    def known(self) -> bool:
        """Whether a patient has been seen (and not forgotten)."""
        return self._hip is not None

    @property
    def misses(self) -> int:
        return self._misses

    @property
    def home_px(self) -> np.ndarray | None:
        """Where a patient walking in place stays (a slow average of their hip); None when
        not walking in place or no patient is known."""
        return self._home.copy() if self.walks_in_place and self._home is not None else None

    def predicted_hip_px(self) -> np.ndarray | None:
        if self._hip is None:
            return None
        if self._tracked_shift is not None:  # keyframes: flow followed the hip between model runs
            return self._hip + self._tracked_shift
        return self._hip + self._velocity * (1 + self._misses)

    def follow(self, hip_shift_px: np.ndarray) -> None:
        """Frames the model skipped (keyframes + optical flow): the patient's hip moved by
        ``hip_shift_px`` since the last fit, so the next fit is expected there, not where
        one frame's velocity would put it."""
        if self._hip is not None and np.isfinite(hip_shift_px).all():
            self._tracked_shift = np.asarray(hip_shift_px, np.float64).copy()
            # the home moves per frame, not per fit: with keyframes the patient's hip
            # would otherwise stray further from it between fits than the leash allows
            self._home += self.home_gain * (self._hip + self._tracked_shift - self._home)

    @property
    def size_known(self) -> bool:
        """Whether the patient's size is learned: the median of the first ``learn_frames``
        fits. Until then size is not judged — a person still entering the view, or the
        model's first fit on a cropped body, can be a third off (a person in the Sports2D
        demo: 224 px, then 175, 140, settling at 120-130), and a size learned from that
        one fit refused every later one."""
        return len(self._first_sizes) >= self.learn_frames

    def gate_px(self) -> float:
        torso = self._torso
        return torso * min(self.max_gate_torso, self.max_jump_torso + self.gate_growth_torso * self._misses)

    def leash_px(self) -> float:
        """How far from home a walking-in-place patient's hip may be; widens like the gate
        while the patient is unseen (they may have stepped back on the belt)."""
        return self._torso * min(self.max_gate_torso,
                                 self.max_wander_torso + self.gate_growth_torso * self._misses)

    def check(self, body: Body, followed: bool = False) -> Verdict:
        verdict = self.judge(body, followed)
        if verdict is not Verdict.PATIENT:
            self.stats.rejected[verdict.name.lower()] += 1
        return verdict

    def judge(self, body: Body, followed: bool = False) -> Verdict:
        """:meth:`check` without counting: is this fit of another person really not the patient?
        ``followed``: optical flow followed this very body, limb by limb, from the patient's
        last fit (a keyframe node): it is the patient by continuity, so its colours — which
        a change of light moves as far as another person's (the Sports2D walker passing in
        front of a grey wall: 0.38 -> 0.51 in two frames) — are not judged; where it stands
        and its size still are."""
        if self._hip is None:
            return Verdict.PATIENT
        if self.size_known and not (1 / self.max_size_ratio <= body.torso_px / self._torso <= self.max_size_ratio):
            return Verdict.SIZE
        if float(np.linalg.norm(body.hip_px - self.predicted_hip_px())) > self.gate_px():
            return Verdict.MOVED
        if self.walks_in_place and self._home is not None \
                and float(np.linalg.norm(body.hip_px - self._home)) > self.leash_px():
            return Verdict.WANDERED
        if not followed and self._learned >= self.learn_frames and body.hist is not None \
                and self._hist is not None and hellinger(body.hist, self._hist) > self.max_colour_distance:
            return Verdict.LOOKS
        return Verdict.PATIENT

    def update(self, body: Body) -> None:
        """``body`` is the patient on this frame."""
        self.stats.accepted += 1
        if self._hip is None:
            self._hip, self._torso = body.hip_px.copy(), body.torso_px
            self._home = body.hip_px.copy()
        else:
            # found again after misses (through a leash widened meanwhile): the patient may
            # have moved on the belt unseen, so home follows the more, the longer they were hidden
            self._home += min(1.0, self.home_gain * (1 + self._misses)) * (body.hip_px - self._home)
            step = (body.hip_px - self._hip) / (1 + self._misses)
            self._velocity += self.velocity_gain * (step - self._velocity)
            self._hip = body.hip_px.copy()
        if self.size_known:
            self._torso += 0.1 * (body.torso_px - self._torso)
        else:
            self._first_sizes.append(body.torso_px)
            self._torso = float(np.median(self._first_sizes))
        self._misses = 0
        self._tracked_shift = None
        if body.hist is None:
            return
        if self._learned < self.learn_frames:  # running mean over the first confident frames
            self._learned += 1
            self._hist = body.hist.copy() if self._hist is None else \
                self._hist + (body.hist - self._hist) / self._learned
        else:  # then drift slowly (lighting, turning): 2 % per accepted frame
            self._hist += 0.02 * (body.hist - self._hist)

    def unseen(self) -> None:
        """A frame nobody looked at while the patient is missing (the model runs on
        keyframes only): the patient may have moved on it too, so it counts as a miss."""
        if self._hip is not None and self._misses > 0:
            self.miss()

    def skipped(self, frames: int) -> None:
        """``frames`` frames this selector never judged (a gap in the node's frames: a
        stretch that waited on disk): the patient may have moved on them, so the gate and
        the leash widen as for that many misses (and a long gap forgets the patient), without
        counting them as "not visible". Without it the first fits after a gap were refused
        as MOVED until the gate had widened miss by miss."""
        if self._hip is not None and frames > 0:
            self._missed(frames)

    def miss(self) -> None:
        """No body on this frame was the patient: "patient not visible"."""
        self.stats.not_visible += 1
        self._missed(1)

    def _missed(self, frames: int) -> None:
        """The patient went ``frames`` frames unfound: gate and leash widen, the velocity
        decays, and past ``forget_after`` misses the model is forgotten."""
        self._misses += frames
        self._velocity *= self.velocity_decay ** frames
        if self._misses >= self.forget_after:
            self.stats.relearned += 1
            self.reset()
