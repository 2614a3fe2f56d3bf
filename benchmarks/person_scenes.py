"""Two-person test scenes made only of real footage, with the patient's true box per frame.

No sample here films a treadmill patient together with another person close by, so the
scenes are composited: the patient is pose2sim's treadmill subject (cam01-04, 60 fps, real
walking in place); the second person is a real walker from the Sports2D demo, cut out of
its own frames with the BlazePose landmark model's segmentation output and pasted with its
own motion (one demo frame per two treadmill frames: the demo is 30 fps).

- ``bystander``: the demo's first person (standing, arms swinging: a clinician gesturing)
  beside the belt, a step behind the patient (the patient is drawn over them), as tall as
  the patient, the feet at the belt's level so a loose belt ROI contains them;
- ``passer``: the demo's walker crossing the image in front of the patient, 15 % taller
  (nearer the camera), hiding the patient completely for a few frames;
- ``in_front``: the first person stepping in front of the patient (frames 20-40) and
  standing there, off-centre, hiding up to half of the patient's body.

The truth comes from the clean clip: the patient's landmarks (box) and segmentation mask.
A frame "follows the patient" when the landmarks given are the patient's (box IoU ≥ 0.5
with the truth), or when "patient not visible" is reported while the person in front
covers at least a quarter of the patient (an occluded patient's landmarks are guesses; the
node is asked to say so rather than guess). ``missed`` counts "not visible" on a patient
at least three quarters visible; ``hidden`` the frames where at most half shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from edge_models.fetch import sample_path
from edge_models.pose.geometry import crop_to_image_matrix
from edge_models.pose.landmarks import INPUT_SIZE_PX, LandmarkModel
from edge_models.pose.person_select import PatientSelector
from edge_models.pose.pipeline import PosePipeline
from edge_models.pose.selection import BeltRoi
from edge_models.registry import SPORTS2D_WALKER
from edge_models.video import read_frames

CAMS = ("cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4")
# The belt as a new user would draw it on each pose2sim view: the treadmill's dark surface
# (fractions of width, height), generous rather than tight.
USER_BELT_ROI = {"cam01.mp4": BeltRoi(0.0, 0.45, 1.0, 1.0), "cam02.mp4": BeltRoi(0.0, 0.45, 1.0, 1.0),
                 "cam03.mp4": BeltRoi(0.0, 0.45, 1.0, 1.0), "cam04.mp4": BeltRoi(0.0, 0.45, 1.0, 1.0)}
DEMO_GESTURER = (10, 160)  # Sports2D demo frames: first person, standing, arms moving
DEMO_WALKER = (140, 206)  # the woman walking across to the left
MIN_IOU = 0.5
MAX_OCCLUDED_VISIBLE = 0.75  # "patient not visible" is right when at most this share shows
MAX_HIDDEN_VISIBLE = 0.5
SCENARIOS = ("bystander", "passer", "in_front")


@dataclass(frozen=True)
class Cutout:
    """One person in one frame: pixels, soft mask and landmarks, all in the frame's pixels."""

    bgr: np.ndarray  # (h, w, 3) uint8, the person's bounding box of the mask
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    origin_px: np.ndarray  # (2,) top-left of the box in the source frame
    lm: np.ndarray  # (33, 4) in source-frame pixels

    @property
    def feet_px(self) -> np.ndarray:
        """Mid-point between the lowest foot landmarks: where the person stands."""
        feet = self.lm[[29, 30, 31, 32], :2]
        return np.array([feet[:, 0].mean(), feet[:, 1].max()])

    @property
    def height_px(self) -> float:
        return float(self.feet_px[1] - self.lm[:11, 1].min())


@dataclass(frozen=True)
class SceneFrame:
    image: np.ndarray  # BGR
    patient_box: np.ndarray  # (4,) xyxy truth from the clean clip
    patient_visible: float  # share of the patient's mask not covered by the other person
    other_box: np.ndarray | None  # (4,) xyxy of the other person's landmarks, None: not in view


def landmark_box(lm: np.ndarray) -> np.ndarray:
    return np.concatenate([lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def cut_people(frames: Sequence[np.ndarray], belt: BeltRoi | None = None,
               whole_only: bool = False) -> list[Cutout | None]:
    """The tracked person of each frame, cut out with the landmark model's segmentation
    (run again on the crop the pipeline tracks, i.e. this frame's body); ``whole_only``:
    None where the mask reaches the frame's edge (a body cut by the edge is no sprite)."""
    # pose2sim's subject (no belt given) walks in place on a treadmill; the demo's people,
    # cut with a region of their frame as the "belt", walk over the ground
    pipe = PosePipeline(threads=2, belt_roi=belt, selector=PatientSelector(walks_in_place=belt is None))
    model = LandmarkModel(pipe.landmark_interpreter)
    seg_index = next(d["index"] for d in pipe.landmark_interpreter.get_output_details()
                     if tuple(d["shape"][1:]) == (INPUT_SIZE_PX, INPUT_SIZE_PX, 1))
    out: list[Cutout | None] = []
    for frame in frames:
        lm = pipe.process(frame)
        if lm is None or pipe.roi is None:
            out.append(None)
            continue
        model.run(frame, pipe.roi)
        logits = pipe.landmark_interpreter.get_tensor(seg_index)[0, :, :, 0]
        crop_mask = (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).astype(np.float32)
        h, w = frame.shape[:2]
        mask = cv2.warpAffine(crop_mask, crop_to_image_matrix(pipe.roi, INPUT_SIZE_PX), (w, h),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        ys, xs = np.nonzero(mask > 0.5)
        if not len(xs):
            out.append(None)
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        if whole_only and (x0 == 0 or y0 == 0 or x1 == w or y1 == h):
            out.append(None)
            continue
        out.append(Cutout(frame[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy(),
                          np.array([x0, y0], np.float64), lm.copy()))
    return out


def paste(image: np.ndarray, person: Cutout, feet_px: np.ndarray, height_px: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``person`` scaled to ``height_px`` with its feet at ``feet_px`` (in place).
    Returns the drawn mask (H, W bool) and the person's landmarks in ``image`` pixels."""
    s = height_px / person.height_px
    shift = feet_px - s * person.feet_px  # source px -> image px: p' = s p + shift
    h, w = image.shape[:2]
    M = np.array([[s, 0, shift[0] + s * person.origin_px[0]], [0, s, shift[1] + s * person.origin_px[1]]])
    alpha = cv2.warpAffine(person.alpha, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    pixels = cv2.warpAffine(person.bgr, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    a = alpha[:, :, None]
    image[:] = (image * (1 - a) + pixels * a).astype(np.uint8)
    lm = person.lm.copy()
    lm[:, :2] = s * lm[:, :2] + shift
    return alpha > 0.5, lm


@lru_cache(maxsize=1)
def patient(cam: str) -> tuple[tuple[np.ndarray, ...], tuple[Cutout, ...]]:
    """A pose2sim clip's frames at half size (540×960: memory; the models see 224- and
    256-px inputs either way) and its (single) person cut out of every frame."""
    frames = tuple(cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2), interpolation=cv2.INTER_AREA)
                   for f in read_frames(sample_path(cam)))
    people = cut_people(frames)
    if any(p is None for p in people):
        raise RuntimeError(f"{cam}: the patient was not found in every frame")
    return frames, tuple(people)  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def demo_people() -> dict[str, tuple[Cutout, ...]]:
    """The Sports2D demo's gesturer (standing on the roof) and walker (on the lawn)."""
    frames = read_frames(sample_path(SPORTS2D_WALKER))
    g0, g1 = DEMO_GESTURER
    w0, w1 = DEMO_WALKER
    gesturer = cut_people(frames[g0:g1], BeltRoi(0.0, 0.0, 1.0, 0.6), whole_only=True)
    walker = cut_people(frames[w0:w1], BeltRoi(0.0, 0.6, 1.0, 1.0), whole_only=True)
    return {"gesturer": _whole(gesturer), "walker": _whole(walker)}


def _whole(people: list[Cutout | None]) -> tuple[Cutout, ...]:
    """Cut-outs of a plausible whole body: as tall as the person's median (a failed
    segmentation is a blob or a fragment) and a mask not much larger than the landmarks."""
    found = [c for c in people if c is not None]
    median_h = float(np.median([c.height_px for c in found]))
    return tuple(c for c in found if abs(c.height_px / median_h - 1.0) < 0.2
                 and c.alpha.size < 2.5 * np.prod(np.diff(landmark_box(c.lm).reshape(2, 2), axis=0)))


Placement = Callable[[int, Cutout, Cutout], "tuple[np.ndarray, float, bool] | None"]


def _placement(scenario: str, cam_index: int) -> tuple[str, Placement]:
    """Which demo person, and for frame k: (feet px, height px, drawn in front) or None."""
    side = 1.0 if cam_index % 2 == 0 else -1.0  # bystander on alternate sides across clips

    if scenario == "bystander":
        def place(k: int, pat: Cutout, other: Cutout):
            h = pat.height_px
            return pat.feet_px + np.array([side * 0.62 * h, -0.04 * h]), h, False
        return "gesturer", place
    if scenario == "in_front":
        def place(k: int, pat: Cutout, other: Cutout):
            h = pat.height_px
            # steps in from the side over frames 20-40 (the patient was on the belt first),
            # then stands a third of a body off the patient's centre line, nearer the camera
            arrived = min(1.0, max(0.0, (k - 20) / 20.0))
            return pat.feet_px + np.array([side * (0.30 + 1.5 * (1 - arrived)) * h, 0.06 * h]), 1.1 * h, True
        return "gesturer", place
    if scenario == "passer":
        def place(k: int, pat: Cutout, other: Cutout):
            h = pat.height_px
            # crosses the frame at a brisk walk: 1.3 patient heights per second at 60 fps
            x = pat.feet_px[0] + side * (0.9 * h - k * 1.3 * h / 60.0)
            return np.array([x, pat.feet_px[1] + 0.06 * h]), 1.15 * h, True
        return "walker", place
    raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")


def scene(scenario: str, cam: str) -> Iterator[SceneFrame]:
    """One pose2sim clip with a second real person added as ``scenario`` says, frame by frame."""
    frames, patients = patient(cam)
    who, place = _placement(scenario, CAMS.index(cam))
    others = demo_people()[who]
    # the patient's box is steady on the median frame; placements use it so the other
    # person keeps their own motion, not the patient's
    ref = patients[len(patients) // 2]
    for k, (frame, pat) in enumerate(zip(frames, patients)):
        other = others[(k // 2) % len(others)]
        image = frame.copy()
        feet, height, in_front = place(k, ref, other)
        drawn, other_lm = paste(image, other, feet, height)
        pat_mask = np.zeros(frame.shape[:2], bool)
        ph, pw = pat.alpha.shape
        x0, y0 = pat.origin_px.astype(int)
        pat_mask[y0:y0 + ph, x0:x0 + pw] = pat.alpha > 0.5
        if not in_front:  # the patient is nearer the camera: drawn over the other person
            a = np.zeros(frame.shape[:2], np.float32)
            a[y0:y0 + ph, x0:x0 + pw] = pat.alpha
            image[:] = (image * (1 - a[:, :, None]) + frame * a[:, :, None]).astype(np.uint8)
            visible = 1.0
        else:
            visible = 1.0 - float((pat_mask & drawn).sum()) / max(1, int(pat_mask.sum()))
        h, w = frame.shape[:2]
        box = landmark_box(other_lm)
        in_view = drawn.any() and box[2] > 0 and box[0] < w
        yield SceneFrame(image, landmark_box(pat.lm), visible, box if in_view else None)


@dataclass(frozen=True)
class Score:
    frames: int
    followed: int  # the patient's landmarks, or "not visible" while the patient was occluded
    wrong_person: int  # landmarks given that are not the patient's
    missed: int  # nothing given although at least three quarters of the patient showed
    occluded_not_visible: int  # occluded frames reported as "patient not visible"
    hidden: int  # frames where at most half of the patient is visible
    hidden_reported: int  # of those, reported as "not visible"

    @property
    def share(self) -> float:
        return self.followed / self.frames if self.frames else float("nan")

    def __add__(self, other: "Score") -> "Score":
        return Score(*(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values())))


def score(frames: Sequence[SceneFrame], outputs: Sequence[np.ndarray | None]) -> Score:
    followed = wrong = missed = occluded_nv = hidden = reported = 0
    for f, lm in zip(frames, outputs, strict=True):
        occluded = f.patient_visible <= MAX_OCCLUDED_VISIBLE
        is_hidden = f.patient_visible <= MAX_HIDDEN_VISIBLE
        hidden += is_hidden
        if lm is None:
            reported += is_hidden
            occluded_nv += occluded
            followed += occluded
            missed += not occluded
        elif box_iou(landmark_box(lm), f.patient_box) >= MIN_IOU:
            followed += 1
        else:
            wrong += 1
    return Score(len(frames), followed, wrong, missed, occluded_nv, hidden, reported)


def run_scene(scenario: str, cam: str, process: Callable[[np.ndarray], "np.ndarray | None"],
              preview: Path | None = None, every: int = 10,
              on_miss: Callable[[int, SceneFrame, "np.ndarray | None"], None] | None = None) -> Score:
    """Feed one scene to ``process`` (a pipeline's, fresh for the clip) and score it;
    ``preview``: also write a contact sheet there, truth box green, the answer's red;
    ``on_miss(k, frame, landmarks)``: called right after each frame that does not follow
    the patient (e.g. to print why, from the pipeline's counters)."""
    truths, outputs, tiles = [], [], []
    for k, frame in enumerate(scene(scenario, cam)):
        lm = process(frame.image)
        outputs.append(lm)
        if on_miss is not None and not score([frame], [lm]).followed:
            on_miss(k, frame, lm)
        if preview is not None and k % every == 0:
            tiles.append(_tile(frame, lm))
        truths.append(SceneFrame(np.empty((0, 0, 3), np.uint8), frame.patient_box, frame.patient_visible,
                                 frame.other_box))
    if preview is not None:
        cv2.imwrite(str(preview), np.concatenate(tiles, axis=1))
    return score(truths, outputs)


def run_scene_keyframes(scenario: str, cam: str, pipe: PosePipeline, interval: int) -> Score:
    """The scene through the node's keyframe estimator (as rig.node.stages builds it: the
    model every ``interval`` frames, optical flow between, ``follow``/``unseen`` told);
    every published frame is scored, tracked ones included."""
    from edge_models.pose.keyframes import KeyframeEstimator
    est = KeyframeEstimator.on(pipe, interval)
    truths, estimates = [], []
    for k, frame in enumerate(scene(scenario, cam)):
        estimates += est.push(k, k / 60.0, frame.image)
        truths.append(SceneFrame(np.empty((0, 0, 3), np.uint8), frame.patient_box, frame.patient_visible,
                                 frame.other_box))
    estimates = sorted(estimates + est.flush(), key=lambda e: e.index)
    return score(truths, [e.lm for e in estimates])


def _tile(f: SceneFrame, lm: np.ndarray | None) -> np.ndarray:
    img = f.image.copy()
    for box, colour in ((f.patient_box, (0, 255, 0)), (None if lm is None else landmark_box(lm), (0, 0, 255))):
        if box is not None:
            cv2.rectangle(img, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]), colour, 4)
    return cv2.resize(img, (img.shape[1] // 3, img.shape[0] // 3))
