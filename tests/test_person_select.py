"""Patient selection: the selector's gates on their own, and the node's pipeline on real
footage with a second real person beside the belt, crossing in front and standing in front
(benchmarks/person_scenes.py builds the scenes; the truth is the patient's clean clip)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_models.pose.person_select import (PAINT_GREY, Body, PatientSelector, Verdict, appearance, body_box,
                                             boxes_overlap, hellinger, paint_out, seen_past, share_painted)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def body(x: float, y: float = 500.0, torso: float = 100.0, colour: int = 0) -> Body:
    hist = np.zeros(128)
    hist[colour] = 1.0
    return Body(np.array([x, y]), torso, hist)


def learned(selector: PatientSelector, frames: int = 12) -> PatientSelector:
    for i in range(frames):
        b = body(300.0 + (i % 2))  # walking in place: the hips sway a pixel
        assert selector.check(b) is Verdict.PATIENT
        selector.update(b)
    return selector


def test_first_body_is_learned_then_others_are_told_apart_by_place_size_and_colour():
    sel = learned(PatientSelector())
    assert sel.check(body(345.0)) is Verdict.PATIENT  # within half a torso of the prediction
    assert sel.check(body(360.0)) is Verdict.MOVED  # 0.6 torso away on the next frame
    assert sel.check(body(300.0, torso=130.0)) is Verdict.SIZE  # nearer the camera
    assert sel.check(body(300.0, torso=80.0)) is Verdict.PATIENT
    assert sel.check(body(300.0, colour=5)) is Verdict.LOOKS
    assert sel.stats.rejected == {"moved": 1, "wandered": 0, "size": 1, "looks": 1}
    assert sel.stats.accepted == 12


def test_colours_are_only_checked_once_learned():
    sel = PatientSelector(learn_frames=10)
    for i in range(9):
        sel.update(body(300.0))
    assert sel.check(body(300.0, colour=5)) is Verdict.PATIENT  # still learning
    sel.update(body(300.0))
    assert sel.check(body(300.0, colour=5)) is Verdict.LOOKS


def test_a_body_the_flow_followed_is_not_judged_by_colours_but_still_by_place_and_size():
    """A keyframe node's flow followed the patient limb by limb to this fit: a change of
    light moving its colours does not make it someone else; a fit elsewhere or of another
    size still is."""
    sel = learned(PatientSelector())
    assert sel.check(body(300.0, colour=5), followed=True) is Verdict.PATIENT
    assert sel.check(body(360.0, colour=5), followed=True) is Verdict.MOVED
    assert sel.check(body(300.0, torso=130.0), followed=True) is Verdict.SIZE
    assert sel.check(body(300.0, colour=5)) is Verdict.LOOKS
    assert sel.stats.rejected == {"moved": 1, "wandered": 0, "size": 1, "looks": 1}


def test_gate_widens_while_the_patient_is_hidden_and_the_model_is_forgotten_at_last():
    sel = learned(PatientSelector(forget_after=10))
    far = body(300.0 + 1.2 * 100.0)
    assert sel.check(far) is Verdict.MOVED
    for _ in range(3):
        sel.miss()  # gate 0.5 + 3 × 0.25 = 1.25 torso
    assert sel.stats.not_visible == 3 and sel.misses == 3
    assert sel.check(far) is Verdict.PATIENT
    for _ in range(6):
        sel.miss()
    assert sel.known and sel.gate_px() == pytest.approx(200.0)  # capped at 2 torso
    sel.miss()
    assert not sel.known and sel.stats.relearned == 1
    assert sel.check(body(900.0, colour=9)) is Verdict.PATIENT  # anyone: a new patient


def test_prediction_follows_a_patient_who_moves_steadily():
    sel = PatientSelector()
    for i in range(30):
        b = body(100.0 + 20.0 * i)  # 0.2 torso per frame, e.g. a walker crossing a side view
        assert sel.check(b) is Verdict.PATIENT, i
        sel.update(b)
    assert sel.predicted_hip_px()[0] == pytest.approx(100.0 + 20.0 * 30, abs=2.0)


def test_a_patient_walking_in_place_is_not_followed_onto_someone_drifting_away():
    """A fit sliding onto a passer moves 0.05 torso a frame — well inside the per-frame gate —
    but a treadmill patient's hip stays near its home: rejected once 0.3 torso from it."""
    drift = [body(300.0 + 5.0 * i) for i in range(1, 20)]
    in_place = learned(PatientSelector(walks_in_place=True))
    verdicts = []
    for b in drift:
        verdicts.append(in_place.check(b))
        if verdicts[-1] is Verdict.PATIENT:
            in_place.update(b)
    first = verdicts.index(Verdict.WANDERED)
    assert 6 <= first <= 10 and verdicts[:first] == [Verdict.PATIENT] * first
    assert in_place.stats.rejected["wandered"] >= 1
    overground = learned(PatientSelector(walks_in_place=False))  # e.g. a walker crossing a side view
    for b in drift:
        assert overground.check(b) is Verdict.PATIENT
        overground.update(b)


def test_the_home_is_told_only_for_a_patient_walking_in_place_and_only_as_a_copy():
    """The pipeline centres its last-resort crop on it: none off a treadmill, none before a patient."""
    assert learned(PatientSelector(walks_in_place=False)).home_px is None
    sel = PatientSelector(walks_in_place=True)
    assert sel.home_px is None
    learned(sel)
    home = sel.home_px
    assert home == pytest.approx([300.5, 500.0], abs=0.5)  # the hips swayed between 300 and 301
    home[0] = 0.0
    assert sel.home_px[0] > 299  # the caller's copy, not the selector's state


def test_the_leash_widens_while_unseen_and_flow_moves_the_home_between_keyframes():
    sel = learned(PatientSelector(walks_in_place=True))
    away = body(300.0 + 0.45 * 100.0)
    assert sel.check(away) is Verdict.WANDERED  # 0.45 torso from home, within the 0.5 gate
    sel.miss()  # leash 0.3 + 0.25 torso
    assert sel.check(away) is Verdict.PATIENT
    sel = learned(PatientSelector(walks_in_place=True))
    for _ in range(12):  # skipped frames: optical flow saw the hip 0.4 torso further
        sel.follow(np.array([40.0, 0.0]))
    assert sel.check(away) is Verdict.PATIENT


def test_a_gap_in_the_frames_widens_the_gate_as_misses_would_without_counting_them_not_visible():
    """Frames that waited on disk were never judged: the patient, walking in place, may be
    a torso from the last prediction when the node sees them again (a stretch finished
    later in between); the gate opens for the frames skipped, a long gap forgets them."""
    sel = learned(PatientSelector(walks_in_place=True))
    moved = body(300.0 + 1.0 * 100.0)
    assert sel.check(moved) is Verdict.MOVED  # one frame later: the 0.5-torso gate
    sel.skipped(3)  # gate 0.5 + 3 x 0.25 torso, leash 0.3 + 0.75
    assert sel.check(moved) is Verdict.PATIENT and sel.stats.not_visible == 0
    assert sel.check(body(300.0, colour=5)) is Verdict.LOOKS  # still the patient's clothes
    sel.skipped(200)  # longer than forget_after: whoever is on the belt next is learned afresh
    assert not sel.known and sel.stats.relearned == 1
    sel.skipped(5)  # nobody known: nothing to widen
    assert not sel.known


def test_appearance_separates_clothes_and_ignores_degenerate_fits():
    frame = np.zeros((400, 300, 3), np.uint8)
    frame[:, :150] = (30, 30, 200)  # a red-clad left half (BGR)
    frame[:, 150:] = (200, 120, 30)  # a blue-clad right half
    lm = np.zeros((33, 4))

    def at(x0: float) -> np.ndarray:
        pts = {11: (x0, 100), 12: (x0 + 60, 100), 23: (x0, 200), 24: (x0 + 60, 200),
               25: (x0, 300), 26: (x0 + 60, 300)}
        out = lm.copy()
        for i, xy in pts.items():
            out[i, :2] = xy
        return out
    red, red2, blue = appearance(frame, at(40)), appearance(frame, at(50)), appearance(frame, at(200))
    assert red is not None and blue is not None
    assert hellinger(red, red2) < 0.05 and hellinger(red, blue) > 0.9
    assert appearance(frame, at(400)) is None  # outside the frame
    assert appearance(frame, np.zeros((33, 4))) is None  # a collapsed fit
    gray = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert appearance(gray, at(40)) is None  # a spooled grayscale crop: no colour to judge by


def test_paint_out_covers_the_body_in_grey_and_says_where():
    frame = np.full((400, 300, 3), 10, np.uint8)
    lm = np.zeros((33, 4))
    lm[:, :2] = (150, 150)  # collapsed limbs at the centre...
    lm[[11, 12, 23, 24], :2] = [(120, 100), (180, 100), (120, 200), (180, 200)]  # ...and a torso
    out, covered = paint_out(frame, lm)
    assert covered[150, 150] and covered[110, 125] and not covered[350, 20]
    assert (out[covered] == PAINT_GREY).all() and (out[~covered] == 10).all()
    assert (frame == 10).all()  # the caller's frame is untouched
    nan = lm.copy()
    nan[5] = np.nan
    same, none = paint_out(frame, nan)
    assert not none.any() and (same == frame).all()


# -- the node's pipeline on real footage with a second real person --------------------------------
TEST_CAMS = ("cam01.mp4", "cam03.mp4")  # a side and a rear view (all four: the benchmark)


@pytest.fixture(scope="module")
def scenes():
    from conftest import assets_or_skip

    from edge_models.registry import MODELS, SAMPLES
    assets_or_skip(MODELS + SAMPLES)
    import person_scenes
    return person_scenes


def follow(scenes, scenario: str, selector: PatientSelector | None = None, cams=TEST_CAMS):
    from edge_models.pose import PosePipeline
    total = None
    for cam in cams:
        pipe = PosePipeline(threads=2, belt_roi=scenes.USER_BELT_ROI[cam], selector=selector)
        s = scenes.run_scene(scenario, cam, pipe.process)
        total = s if total is None else total + s
    return total


@pytest.mark.parametrize("scenario", ["bystander", "passer", "in_front"])
def test_node_follows_the_patient_in_99_percent_of_real_frames(scenes, scenario):
    s = follow(scenes, scenario)
    assert s.frames == 200
    assert s.share >= 0.99, f"{scenario}: {s}"
    assert s.wrong_person <= 1, f"{scenario}: {s}"  # another person's landmarks: 1 frame in 200 at most
    assert s.hidden_reported == s.hidden  # a hidden patient is "not visible", not guessed
    assert s.missed <= 2  # "not visible" only on an occluded patient, nearly always


def test_the_belt_roi_alone_follows_the_passer(scenes):
    """The scene is hard: without the patient model the node takes the passer's landmarks."""
    class BeltOnly(PatientSelector):
        def check(self, body, followed=False):
            return Verdict.PATIENT
    s = follow(scenes, "passer", BeltOnly())
    assert s.wrong_person >= 40 and s.share < 0.8, s


@pytest.mark.parametrize("cam, followed, wrong, other_fits", [("cam02.mp4", 98, 2, 18), ("cam04.mp4", 97, 1, 5)])
def test_the_passer_on_the_harder_views_is_not_followed(scenes, cam, followed, wrong, other_fits):
    """cam04: the passer covers a quarter of the patient while the colour model learns and
    the fit slides onto them slower than the per-frame gate: the walking-in-place leash
    stops the slide. cam02: the passer covers the patient's chest; looking past them
    counts while the legs show; where the last frame's crop, past them, fitted the legs
    under the paint (a guess, refused), the patient's home crop found them where the camera
    saw them (frame 68; was 97/100, and the passer, followed while over a patient found on
    more frames, was fitted apart on 16 frames, now 18). The bench's figures; the rest: landmark noise (a hand
    100 px off) and, on cam04, frames 12-14 where the thin passer is inside the patient's box
    and every fit — theirs too — is a blend of both. Fitting the passer apart costs at most
    ``other_fits`` extra landmark runs: on cam04 painting them out stopped helping (the plain
    run found the patient three frames in a row), so they are no longer fitted (was 48)."""
    from edge_models.pose import PosePipeline
    pipe = PosePipeline(threads=2, belt_roi=scenes.USER_BELT_ROI[cam])
    s = scenes.run_scene("passer", cam, pipe.process)
    assert s.followed >= followed and s.wrong_person <= wrong, s
    assert s.hidden_reported == s.hidden, s
    assert pipe.stats.other_fits <= other_fits, pipe.stats


def test_a_patient_hidden_behind_someone_who_stays_is_not_looked_for_on_the_home_crop_every_frame(scenes):
    """The in-front scene, cam01: the person steps in front and stays, hiding a third of the
    patient for 60 frames. Every frame is followed ("not visible" while hidden), and the
    home-crop look past them — one more landmark run — stops after three that found nobody:
    163 landmark runs before there was a home crop, 208 when it was tried on every such frame."""
    from edge_models.pose import PosePipeline
    pipe = PosePipeline(threads=2, belt_roi=scenes.USER_BELT_ROI["cam01.mp4"])
    s = scenes.run_scene("in_front", "cam01.mp4", pipe.process)
    assert (s.followed, s.wrong_person) == (100, 0), s
    assert pipe.landmark_interpreter.runs <= 170, pipe.stats


def test_without_the_leash_the_fit_slides_onto_the_passer(scenes):
    s = follow(scenes, "passer", PatientSelector(walks_in_place=False), cams=("cam04.mp4",))
    assert s.followed <= 30 and s.wrong_person >= 15, s  # bench before the leash: 25/100, 18 wrong


def test_share_painted_counts_landmarks_on_covered_pixels_only_inside_the_frame():
    covered = np.zeros((100, 100), bool)
    covered[:, :50] = True
    lm = np.zeros((33, 4))
    lm[:, :2] = (75, 50)
    lm[:11, :2] = (25, 50)  # 11 on the paint
    lm[11:14, :2] = (-5, 50)  # 3 outside the frame
    assert share_painted(lm, covered) == pytest.approx(11 / 33)


def test_a_fit_past_someone_counts_if_most_landmarks_or_the_legs_were_seen():
    covered = np.zeros((100, 100), bool)
    covered[:50] = True  # the top half painted out: someone in front of the chest
    lm = np.zeros((33, 4))
    lm[:, :2] = (50, 25)  # everything under the paint...
    lm[23:, :2] = (50, 75)  # ...but hips, legs and feet
    assert share_painted(lm, covered) == pytest.approx(23 / 33) and seen_past(lm, covered)
    lm[25:27, :2] = (50, 25)  # the knees too: 2 of 10 gait points
    assert seen_past(lm, covered)
    lm[27, :2] = (50, 25)  # an ankle more: the legs are behind them, a guess
    assert not seen_past(lm, covered)
    lm[:23, :2] = (50, 75)  # the upper body seen instead: 4 of 33 painted
    assert seen_past(lm, covered)


def test_judging_a_fit_counts_no_rejection_and_boxes_overlap_only_on_shared_area():
    sel = learned(PatientSelector())
    assert sel.judge(body(300.0, torso=130.0)) is Verdict.SIZE
    assert sel.stats.rejected["size"] == 0  # judge: a question about someone else, not a rejection
    lm = np.zeros((33, 4))
    lm[:, :2] = (50, 80)
    lm[0, :2], lm[32, :2] = (10, 20), (90, 200)
    assert list(body_box(lm)) == [10, 20, 90, 200]
    a = np.array([0.0, 0.0, 100.0, 100.0])
    assert boxes_overlap(a, np.array([99.0, 50.0, 150.0, 60.0]))
    assert not boxes_overlap(a, np.array([100.0, 50.0, 150.0, 60.0]))  # touching is not overlapping
    assert not boxes_overlap(a, np.array([20.0, 101.0, 30.0, 160.0]))


def test_a_passer_over_the_patient_is_fitted_apart_and_painted_out_only_while_they_overlap(scenes):
    """cam03's passer: where the two bodies blend, the landmark model on the patient's crop
    fitted a mix of both that passed every check of the patient (frame 68). The passer is
    now fitted on their own crop and painted out first: every frame follows the patient,
    and the extra landmark run is paid only on frames where the passer's body overlaps the
    patient's (13 of 100 frames; before: 99/100, that blend given as the patient)."""
    from edge_models.pose import PosePipeline
    pipe = PosePipeline(threads=2, belt_roi=scenes.USER_BELT_ROI["cam03.mp4"])
    frames, outputs, paid = [], [], []
    for frame in scenes.scene("passer", "cam03.mp4"):
        before = pipe.stats.other_fits
        outputs.append(pipe.process(frame.image))
        frames.append(frame)
        paid.append(pipe.stats.other_fits - before)
    s = scenes.score(frames, outputs)
    assert (s.followed, s.wrong_person, s.hidden_reported) == (100, 0, s.hidden), s
    assert sum(paid) == 13 and max(paid) == 1
    for k in np.flatnonzero(paid):  # only with the passer in view, their box over the patient's
        other = frames[k].other_box
        assert other is not None and boxes_overlap(other, frames[k].patient_box), k
