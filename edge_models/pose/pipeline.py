"""The per-frame BlazePose pipeline with tracking and patient selection.

Per frame (Bazarevsky et al. 2020; MediaPipe pose_landmark_cpu graph):

1. If there is no track, run the detector on the letterboxed frame, keep the candidates
   standing on the belt, and crop the rotated square given by the best one's hip centre and
   body-circle point (×1.25).
2. Run the landmark model on the crop. Presence below the threshold, or feet off the belt,
   ends the track; a lost track is re-acquired with the detector *on the same frame*, so a
   frame is not given up just because the crop was stale.
3. The next frame's crop comes from this frame's two auxiliary landmarks, one-euro smoothed
   as in MediaPipe — the detector, the costlier half, runs again only when a track is lost.

Every fit, tracked or acquired, must also be the patient by :class:`PatientSelector`
(position, size and colours of the body followed so far): another person on the belt — a
clinician in front of the treadmill — ends the track like feet off the belt do, the
detector's other candidates are tried, and if none is the patient the frame is "patient
not visible" (``None``) rather than someone else's landmarks. Before giving up, a body
rejected as someone else is painted out (:func:`paint_out`) and the landmark model runs
once more on the patient's last crop, so a patient partly hidden by a person in front is
still found. That person is then followed on their own crop, one extra landmark run a
frame while their body overlaps the patient's, and painted out before the patient's run:
where two bodies blend in one crop, the model's fit of "the patient" can be a mix of both
that passes every check. On a treadmill, if that last crop too finds nobody, the model looks
past them once more on the patient's *home crop* (:meth:`PosePipeline._home_rect`): every
other crop follows fits, and fits near another person are drawn toward them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_models.fetch import model_path
from edge_models.interpreter import InterpreterConfig, TimedInterpreter, make_interpreter
from edge_models.pose.detector import MIN_SCORE, PoseDetector
from edge_models.pose.filters import OneEuroFilter
from edge_models.pose.geometry import RotatedRect, rect_from_alignment_points
from edge_models.pose.landmarks import LandmarkModel, LandmarkResult
from edge_models.pose.person_select import (Body, PatientSelector, Verdict, body_box, boxes_overlap, describe,
                                             paint_out, seen_past, torso_length_px)
from edge_models.pose.selection import BeltRoi, landmarks_on_belt, patient_candidates
from edge_models.pose.tracking import GAIT_POINTS
from edge_models.registry import POSE_DETECTION, POSE_LANDMARK_FULL

MIN_PRESENCE = 0.5  # mp.solutions.pose min_tracking_confidence default
MAX_CANDIDATES = 3  # detections tried per acquisition (each costs one landmark run)
MAX_USELESS_PAINTS = 3  # frames in a row painting another person out did not find the patient
# but the plain run did: stop fitting them (cam04's passer, thin and inside the patient's box)
FLOW_AGREES_TORSO_FRAC = 0.1  # a fit whose gait points lie this close (median) to the flow's is the body it followed
MIN_FLOW_HELD_SHARE = 0.75  # ...judged on at least this share of the gait points still held by the flow
MAX_USELESS_HOME_LOOKS = 3  # home-crop looks in a row that found nobody: a patient hidden behind
# someone who stays (the in-front scene, cam01: 45 such frames) is not looked for there again until found


@dataclass
class PipelineStats:
    """Counters a node publishes: how often the detector ran and why tracks ended."""

    frames: int = 0
    found: int = 0
    detector_runs: int = 0
    tracks_lost: int = 0
    rejected_off_belt: int = 0
    rejected_not_patient: int = 0  # fits of someone else (see PatientSelector.stats for why)
    patient_not_visible: int = 0  # frames given up because no body there was the patient
    painted_out: int = 0  # landmark runs with someone else painted out
    other_fits: int = 0  # extra landmark runs on another person whose body overlaps the patient's


class PosePipeline:
    """BGR frame in, the patient's 33 landmarks out (or None).

    >>> pipe = PosePipeline(threads=2, belt_roi=BeltRoi(0.2, 0.5, 0.8, 1.0))
    >>> lm = pipe.process(frame_bgr)   # (33, 4): x_px, y_px, z_px, visibility, or None

    Frames of one video/camera must be fed in order (the crop is tracked); call ``reset()``
    between sequences. Models come from ``models_dir`` (default: the gaitrig cache) and are
    hash-checked; ModelMissingError / AssetCorruptError name ``gaitrig models fetch``.
    """

    def __init__(self, models_dir: Path | str | None = None, threads: int = 2,
                 belt_roi: BeltRoi | None = None, delegate_path: str | None = None,
                 min_detection_score: float = MIN_SCORE, min_presence: float = MIN_PRESENCE,
                 min_invoke_ms: tuple[float, float] = (0.0, 0.0),
                 selector: PatientSelector | None = None):
        """``min_invoke_ms`` (detector, landmark) slows the models to a stated device's
        speed (see :class:`TimedInterpreter`); 0 runs them at this machine's. ``selector``
        decides which body is the patient (default: :class:`PatientSelector`'s gates)."""
        directory = Path(models_dir) if models_dir is not None else None
        config = InterpreterConfig(num_threads=threads, delegate_path=delegate_path)
        self.detector_interpreter = TimedInterpreter(
            make_interpreter(model_path(POSE_DETECTION, directory), config), min_invoke_ms[0])
        self.landmark_interpreter = TimedInterpreter(
            make_interpreter(model_path(POSE_LANDMARK_FULL, directory), config), min_invoke_ms[1])
        self._detector = PoseDetector(self.detector_interpreter, min_detection_score)
        self._landmarks = LandmarkModel(self.landmark_interpreter)
        self.belt_roi = belt_roi or BeltRoi()
        self.min_presence = min_presence
        self.stats = PipelineStats()
        self.selector = selector or PatientSelector()
        if self.selector.walks_in_place is None:  # a belt drawn: a treadmill patient
            self.selector.walks_in_place = not self.belt_roi.is_whole_image
        self._roi_filter = OneEuroFilter()
        self._rect: RotatedRect | None = None
        self._last_aux_px: np.ndarray | None = None  # the last model run's, for follow()
        self._body: Body | None = None  # the accepted fit's description, for the selector
        self._patient_rect: RotatedRect | None = None  # crop of the last frame the patient was found
        self._other: LandmarkResult | None = None  # this frame's fit rejected as someone else
        self._other_track: LandmarkResult | None = None  # that person's own last fit, while over the patient
        self._patient_box: np.ndarray | None = None  # the patient's last landmarks' box
        self._crop_offsets_px: list[np.ndarray] = []  # aux point 1 - aux point 0 of the patient's first fits
        self._paint_useless = 0  # frames in a row the patient was found only without painting them out
        self._home_useless = 0  # home-crop looks in a row that found nobody
        self._flow_xy: np.ndarray | None = None  # this frame's gait points as the flow followed them (expect)

    @property
    def tracking(self) -> bool:
        return self._rect is not None

    @property
    def crowded(self) -> bool:
        """Another person's body overlapped the patient's at the last run (they are followed
        on their own crop and painted out): optical flow between runs would be dragged along
        by them, so a keyframe node runs the model on every frame meanwhile."""
        return self._other_track is not None

    @property
    def roi(self) -> RotatedRect | None:
        """The crop the next frame's landmark run will use (None: the detector runs)."""
        return self._rect

    def time_models(self, width: int, height: int, runs: int = 5) -> tuple[float, float]:
        """Median ms of one detector run and one landmark run (pre- and post-processing
        included) on a blank ``width``×``height`` frame; the track is left as it was."""
        frame = np.full((height, width, 3), 127, np.uint8)
        rect = RotatedRect(width / 2, height / 2, min(width, height) * 0.8, 0.0)
        det_ms, lm_ms = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            self._detector.detect(frame)
            t1 = time.perf_counter()
            self._landmarks.run(frame, rect)
            det_ms.append((t1 - t0) * 1000)
            lm_ms.append((time.perf_counter() - t1) * 1000)
        return float(np.median(det_ms)), float(np.median(lm_ms))

    def reset(self) -> None:
        """Forget the track and the patient (next frame runs the detector; a new sequence)."""
        self._rect = self._patient_rect = None
        self._last_aux_px = None
        self._other_track = self._patient_box = None
        self._crop_offsets_px = []
        self._paint_useless = self._home_useless = 0
        self._roi_filter.reset()
        self.selector.reset()

    def follow(self, hip_shift_px: np.ndarray, top_shift_px: np.ndarray) -> None:
        """A frame the model skips (keyframes + optical flow): the body moved by these
        shifts since the last model run (hip centre, shoulders), so step the crop as if the
        model had seen it there. The landmark model's output moves by 1.4–2.7 % of the torso
        when its crop is only 3 frames stale; without this, each keyframe's crop would be
        the previous keyframe's and every keyframe would disagree with every-frame
        inference by that much."""
        if self._rect is None or self._last_aux_px is None:
            return
        shift = np.empty((2, 2))
        shift[0], shift[1] = hip_shift_px, top_shift_px
        if np.isfinite(shift).all():
            self._place_crop(self._last_aux_px + shift)
            self.selector.follow(shift[0])

    def skipped(self, frames: int) -> None:
        """A gap of ``frames`` frames the pipeline never saw (a stretch that waited on
        disk): the crop is kept (a stale one fails its checks and the detector runs), the
        patient's gate widens for the time the patient moved unseen."""
        self.selector.skipped(frames)

    def unseen(self) -> None:
        """A frame the model skipped while looking for the patient (keyframes)."""
        self.selector.unseen()

    def expect(self, gait_xy_px: np.ndarray) -> None:
        """A keyframe node's flow followed the patient's gait points (``GAIT_POINTS`` order,
        image px, NaN where lost) from their last fit to the frame :meth:`process` gets
        next: a fit lying on them is the patient by continuity (see
        :meth:`PatientSelector.judge`). Applies to that one frame."""
        self._flow_xy = gait_xy_px

    def process(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        try:
            return self._process(frame_bgr)
        finally:
            self._flow_xy = None

    def _process(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {frame_bgr.dtype} "
                             f"{frame_bgr.shape}")
        self.stats.frames += 1
        self._other = None
        if not self.selector.known:  # none yet, or forgotten: the next patient's crop is learned anew
            self._crop_offsets_px = []
        result = self._on_track(frame_bgr) if self._rect is not None else None
        if result is None:
            result = self._acquire(frame_bgr) or self._look_past_other(frame_bgr)
        if self._other is not None and self._other_track is None:
            self._paint_useless = 0
            self._other_track = self._other  # follow them on their own crop while they overlap the patient
        if result is None:
            if self.selector.known:
                self.stats.patient_not_visible += 1
                self.selector.miss()
            return None
        self.selector.update(self._body)
        self._home_useless = 0
        if len(self._crop_offsets_px) < self.selector.learn_frames:
            self._crop_offsets_px.append(result.aux_px[1] - result.aux_px[0])
        self._track(result)
        self._patient_box = body_box(result.landmarks)
        self.stats.found += 1
        return result.landmarks

    def _on_track(self, frame_bgr: np.ndarray) -> LandmarkResult | None:
        """The landmark model on the tracked crop — first past another person over the
        patient, painted out — or None (the track is lost: the detector runs)."""
        painted, covered = self._paint_other(frame_bgr)
        if covered is not None:  # someone over the patient: first look past them
            self.stats.painted_out += 1
            result = self._landmarks.run(painted, self._rect)
            if self._accept(result, painted, covered):
                self._paint_useless = 0
                return result
            self._other = None  # (the patient under paint is no one else)
        result = self._landmarks.run(frame_bgr, self._rect)
        if not self._accept(result, frame_bgr):
            self.stats.tracks_lost += 1
            self._rect = None
            self._roi_filter.reset()
            return None
        if covered is not None:  # found without painting them out
            self._paint_useless += 1
            if self._paint_useless >= MAX_USELESS_PAINTS:
                self._other_track = None
        return result

    def _paint_other(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Another person seen over the patient (a fit rejected as someone else) is fitted on
        their own crop — one extra landmark run, only while their body overlaps the patient's
        — and painted out before the patient's run: a crop with two bodies gives a fit of
        the nearer one or a blend of both, which may pass every check of the patient. The
        frame and the painted pixels (None: nobody painted)."""
        other = self._other_track
        if other is None or self._patient_box is None or not boxes_overlap(body_box(other.landmarks),
                                                                           self._patient_box):
            self._other_track = None
            return frame_bgr, None
        fit = self._landmarks.run(frame_bgr, rect_from_alignment_points(other.aux_px[0], other.aux_px[1]))
        self.stats.other_fits += 1
        if fit.presence < self.min_presence or \
                self.selector.judge(describe(frame_bgr, fit.landmarks)) is Verdict.PATIENT:
            self._other_track = None  # gone, or their crop slid onto the patient
            return frame_bgr, None
        self._other_track = fit
        if not boxes_overlap(body_box(fit.landmarks), self._patient_box):
            return frame_bgr, None
        return paint_out(frame_bgr, fit.landmarks)

    def _accept(self, result: LandmarkResult, frame_bgr: np.ndarray,
                ignore: np.ndarray | None = None) -> bool:
        """``ignore``: pixels painted out (someone else's); a fit mostly on them is a guess."""
        if result.presence < self.min_presence:
            return False
        if ignore is not None and not seen_past(result.landmarks, ignore):
            return False
        h, w = frame_bgr.shape[:2]
        if not landmarks_on_belt(result.landmarks, self.belt_roi, w, h):
            self.stats.rejected_off_belt += 1
            return False
        body = describe(frame_bgr, result.landmarks, ignore)
        if self.selector.check(body, self._followed_by_flow(result.landmarks)) is not Verdict.PATIENT:
            self.stats.rejected_not_patient += 1
            self._other = result
            return False
        self._body = body
        return True

    def _followed_by_flow(self, landmarks: np.ndarray) -> bool:
        """The fit lies on the gait points the flow followed to this frame (:meth:`expect`)."""
        flow = self._flow_xy
        if flow is None:
            return False
        held = np.isfinite(flow).all(axis=1)
        if held.mean() < MIN_FLOW_HELD_SHARE:
            return False
        apart = np.linalg.norm(landmarks[GAIT_POINTS, :2][held] - flow[held], axis=1)
        return float(np.median(apart)) <= FLOW_AGREES_TORSO_FRAC * torso_length_px(landmarks)

    def _acquire(self, frame_bgr: np.ndarray) -> LandmarkResult | None:
        self.stats.detector_runs += 1
        h, w = frame_bgr.shape[:2]
        detections = self._detector.detect(frame_bgr)
        candidates = patient_candidates(detections, self.belt_roi, w, h,
                                        self.selector.predicted_hip_px())
        for detection in candidates[:MAX_CANDIDATES]:
            rect = rect_from_alignment_points(detection.keypoints_px[0], detection.keypoints_px[1])
            result = self._landmarks.run(frame_bgr, rect)
            if self._accept(result, frame_bgr):
                return result
        return None

    def _look_past_other(self, frame_bgr: np.ndarray) -> LandmarkResult | None:
        """Someone else was fitted: paint them out and look again where the patient was —
        on the crop of the last frame they were found, then on their home crop (one more
        landmark run; after ``MAX_USELESS_HOME_LOOKS`` in a row found nobody, not again
        until the patient is found)."""
        if self._other is None:
            return None
        painted, covered = paint_out(frame_bgr, self._other.landmarks)
        result = self._run_past(painted, covered, self._patient_rect)
        home = self._home_rect() if self._home_useless < MAX_USELESS_HOME_LOOKS else None
        if result is None and home is not None:
            result = self._run_past(painted, covered, home)
            self._home_useless += result is None
        return result

    def _run_past(self, painted: np.ndarray, covered: np.ndarray, rect: RotatedRect | None
                  ) -> LandmarkResult | None:
        if rect is None:
            return None
        self.stats.painted_out += 1
        result = self._landmarks.run(painted, rect)
        return result if self._accept(result, painted, covered) else None

    def _home_rect(self) -> RotatedRect | None:
        """The crop a treadmill patient's body fills when they are where they stay: centred
        on their home (:attr:`PatientSelector.home_px`), sized and turned as the median of
        their first fits (the fits their size is learned from). The tracked crop and the
        last frame's follow the fits, and fits with another person close by are drawn
        toward them; this one moves only as slowly as the home. Past cam02's painted-out
        passer, the last frame's crop gave a fit with 7 of its 10 hip-to-toe points under
        the paint (refused: a guess), the home crop one with 1 of 10 (the legs where the
        camera saw them). None: not on a treadmill, or the patient not yet learned."""
        home = self.selector.home_px
        if home is None or len(self._crop_offsets_px) < self.selector.learn_frames:
            return None
        return rect_from_alignment_points(home, home + np.median(self._crop_offsets_px, axis=0))

    def _track(self, result: LandmarkResult) -> None:
        """Place the next crop from the smoothed auxiliary landmarks. Velocities are scaled
        by the body size (the unscaled crop side), as MediaPipe's OBJECT_SCALE_ROI."""
        self._place_crop(result.aux_px)
        self._last_aux_px = result.aux_px.copy()

    def _place_crop(self, aux_px: np.ndarray) -> None:
        body = aux_px[1] - aux_px[0]
        object_scale_px = 2.0 * math.sqrt(body.dot(body))  # np.linalg.norm's own arithmetic, without its checks
        scale = 1.0 / object_scale_px if object_scale_px > 1e-6 else 1.0
        smoothed = self._roi_filter.apply(aux_px, scale)
        self._rect = self._patient_rect = rect_from_alignment_points(smoothed[0], smoothed[1])
