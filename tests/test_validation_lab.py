"""The C3D trials that carry the lab model's own joint centres and angles
(rig.validation.c3d_trials; docs/validation.md, docs/3d.md): what they hold, the plate
events judged for split-belt crossover and their 20 N threshold, the 3D chain against
Plug-in Gait (the gait engine's events on the treadmill trial are scored with the event set
in tests/test_gait_real.py). Needs the cached recordings (`gaitrig models fetch`)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assets_or_skip

from rig.validation import load_trial, world_landmarks
from rig.validation.c3d_trials import LAB_TRIAL_NAMES, STANDING_TRIAL_NAMES
from rig.validation.trials import EVENT_TRIAL_NAMES, TRIAL_NAMES, plate_events

LAB_FILES = ["gaitalytics_treadmill_events.c3d", "openofm_dynamic_processed.c3d"]
STATIC_FILE = "openofm_static_processed.c3d"


@pytest.fixture(scope="module")
def trials():
    assets_or_skip(LAB_FILES)
    return {n: load_trial(n) for n in LAB_TRIAL_NAMES}


@pytest.fixture(scope="module")
def results(trials):
    from rig.threed.validation import evaluate
    return {n: evaluate(t, noise_px=1.5, seed=0) for n, t in trials.items()}


def test_the_plate_trial_is_in_the_event_set_and_the_ofm_trial_is_not():
    """pig_treadmill has plate events and is scored with the others (tests/test_gait_real.py);
    ofm_overground has none. Neither is a marker recording of TRIAL_NAMES (the 3D checks)."""
    assert set(LAB_TRIAL_NAMES).isdisjoint(TRIAL_NAMES)
    assert EVENT_TRIAL_NAMES == TRIAL_NAMES + ("pig_treadmill",)


def test_the_20_newton_threshold_is_clear_of_the_unloaded_plates_noise():
    """As on the GaitAnalysisToolKit plate (swing reads -2..+1 N): in swing (50 ms after a
    foot-off to 50 ms before the next contact) each belt's plate reads -10..+7 N raw at 1 kHz,
    so a 20 N crossing is a load, not noise; at contact the force rises 0.7-1.9 N/ms, so the
    noise moves the crossing by a few ms at most."""
    import ezc3d

    from edge_models.fetch import validation_path
    assets_or_skip(LAB_FILES[:1])
    c = ezc3d.c3d(str(validation_path(LAB_FILES[0])))
    labels = [s.strip() for s in c["parameters"]["ANALOG"]["LABELS"]["value"]]
    analog = np.array(c["data"]["analogs"][0], float)
    t = np.arange(analog.shape[1]) / 1000.0
    for k in (1, 2):
        fz = -analog[labels.index(f"Force.Fz{k}")]
        on, off = plate_events(t, fz)
        swing = np.zeros(len(t), bool)
        for o in off:
            nxt = on[on > o]
            if len(nxt):
                swing |= (t > o + 0.05) & (t < nxt[0] - 0.05)
        assert swing.sum() > 1500, k
        assert -11.0 < fz[swing].min() and fz[swing].max() < 8.0, k
        assert 590 < fz.max() < 610  # 1.1 body weights (55.3 kg): newtons, not volts


def test_treadmill_trial_is_plug_in_gait_on_a_split_belt(trials):
    t = trials["pig_treadmill"]
    assert t.setting == "treadmill" and t.native_fps == 100.0 and len(t.t_s) == 1206
    assert 1.05 < t.belt_speed_m_s < 1.12  # the flat foot's speed on the belt
    assert t.lab.model.startswith("Vicon Plug-in Gait")
    assert t.marker_for["hip"] == "L/RFEP" and t.marker_for["knee"] == "L/RFEO" and t.marker_for["ankle"] == "L/RTIO"
    # the hip centres are rigid in the pelvis: Plug-in Gait's, not a marker
    d = np.linalg.norm(t.markers[("left", "hip")] - t.markers[("right", "hip")], axis=1)
    assert np.ptp(d) < 1e-3 and abs(np.median(d) - 0.1286) < 1e-3


def test_plate_events_are_judged_for_crossover(trials):
    ref = trials["pig_treadmill"].reference
    counts = [len(ref.ic_s["left"]), len(ref.fo_s["left"]), len(ref.ic_s["right"]), len(ref.fo_s["right"])]
    assert counts == [10, 5, 7, 8]
    reasons = [d.reason for d in ref.dropped]
    assert len(reasons) == 11
    assert sum("heel landed on plate 1" in r for r in reasons) == 4  # right heel on the left belt
    assert sum("a foot off starts a planted foot" in r for r in reasons) == 7
    for s in ("left", "right"):  # kept contacts are whole strides (1.13 s) apart: none spurious
        gaps = np.diff(ref.ic_s[s])
        strides = np.round(gaps / 1.135)
        assert np.all(strides >= 1) and np.all(np.abs(gaps - 1.135 * strides) < 0.06 * strides)


def test_3d_angles_match_plug_in_gait_on_its_own_joint_centres(results):
    for name in LAB_TRIAL_NAMES:  # the lab's joint centres triangulated within 3 mm median (goal 10)
        assert max(results[name].joint_error_mm.values()) < 3.0, name
    r = results["pig_treadmill"]
    for side in ("left", "right"):
        for k in ("hip_flexion_deg", "knee_flexion_deg", "ankle_dorsiflexion_deg"):
            assert r.lab_rmse_deg[f"{side} {k}"] <= 3.0, (side, k)
        assert r.lab_rmse_deg[f"{side} hip_flexion_deg"] < 0.6


def test_knee_difference_is_the_flexion_axis_not_the_points(trials, results):
    """Where ours misses Plug-in Gait's knee by 2-5° the rotation-free three-point angle of
    the same joint centres misses it by as much: Plug-in Gait puts part of the thigh-shank
    angle into knee ab/adduction (its flexion axis comes from the thigh marker), ours into
    flexion (our axis comes from the hip line)."""
    from rig.threed.validation import three_point_angles
    for name, side in (("pig_treadmill", "right"), ("ofm_overground", "right"), ("ofm_overground", "left")):
        t = trials[name]
        w = world_landmarks(t, t.t_s)
        pig = t.lab.angles_deg[(side, "knee_flexion_deg")]
        three = float(np.mean(three_point_angles(w, side)["knee_flexion_deg"] - pig))
        assert abs(results[name].lab_bias_deg[f"{side} knee_flexion_deg"] - three) < 0.6, (name, side)
        assert three > 1.5


def test_plug_in_gait_knee_is_rebuilt_from_its_own_axes(trials):
    """The file's femur and tibia axes (Nexus bones) through Grood-Suntay with Plug-in
    Gait's signs give the file's own KneeAngles X and Y: the correction below changes
    only the axis."""
    from rig.threed.validation import pig_knee_angles
    for t in trials.values():
        for side in ("left", "right"):
            flex, add = pig_knee_angles(t.lab.frames[(side, "femur")], t.lab.frames[(side, "tibia")], side)
            assert np.abs(flex - t.lab.angles_deg[(side, "knee_flexion_deg")]).max() < 0.01, (t.name, side)
            assert np.abs(add - t.lab.angles_deg[(side, "knee_adduction_deg")]).max() < 0.01, (t.name, side)


def test_cross_talk_corrected_plug_in_gait_knee_agrees_with_ours(results):
    """Plug-in Gait's knee shows cross-talk's hallmark on every side (flexion and
    ab/adduction correlated |r| > 0.9, ab/adduction swinging 15-37°; the OFM trial's right
    knee reaches -39°, which the report's own human-range rule would withhold). Its flexion
    axis turned about the femur's long axis until the two are uncorrelated (Baudet et al.
    2014; the angle found on the lab's angles alone, never on ours) leaves 8-10° of
    ab/adduction, and our knee flexion then agrees within 1° on all four knees (raw: up to
    4.7°); Baker's least-adduction axis lies within 6° of it and agrees as well."""
    expected_axis = {("pig_treadmill", "left"): -14.1, ("pig_treadmill", "right"): 30.3,
                     ("ofm_overground", "left"): -29.1, ("ofm_overground", "right"): 40.3}
    for (name, side), axis in expected_axis.items():
        k = results[name].knee_crosstalk[side]
        assert abs(k.axis_deg - axis) < 0.5, (name, side, k.axis_deg)
        assert abs(k.axis_least_adduction_deg - k.axis_deg) < 6.0
        assert abs(k.raw_corr) > 0.9 and abs(k.corrected_corr) < 0.01
        assert 15.0 < k.raw_adduction_deg[1] - k.raw_adduction_deg[0] < 37.0
        assert k.corrected_adduction_deg[1] - k.corrected_adduction_deg[0] < 10.5
        assert -6.5 < k.corrected_adduction_deg[0] and k.corrected_adduction_deg[1] < 9.0
        assert k.corrected_rmse_deg < 1.0 and k.corrected_least_adduction_rmse_deg < 1.0, (name, side)
        assert k.markers_corrected_rmse_deg < 0.8
        assert (k.raw_implausible is not None) == ((name, side) == ("ofm_overground", "right"))
    assert results["ofm_overground"].knee_crosstalk["right"].raw_rmse_deg > 4.5  # the raw gap is real
    assert "-39..-2°" in results["ofm_overground"].knee_crosstalk["right"].raw_implausible


def test_ofm_trial_carries_the_hindfoot_angle(trials):
    t = trials["ofm_overground"]
    assert t.reference is None and t.setting.startswith("overground")
    hf = t.lab.angles_deg[("left", "hindfoot_tibia_frontal_deg")]
    assert hf.shape == t.t_s.shape and np.all(np.abs(hf) < 30)


def test_rearfoot_against_the_oxford_foot_model(trials):
    """The rearfoot line is triangulated within 2° of the markers' own while the heel is
    down; against OFM's hindfoot–tibia angle the markers themselves miss by more than 2°
    (different quantities with different neutrals: docs/3d.md), and that is what is shown."""
    from rig.threed.validation import hindfoot_check
    h = hindfoot_check(trials["ofm_overground"], 1.5, 0)
    assert h.n_frames == {"left": 89, "right": 105}
    for s in ("left", "right"):
        assert h.triangulation_rmse_deg[s] < 2.0
        assert h.markers_rmse_deg[s] > 2.0
    assert hindfoot_check(trials["pig_treadmill"]) is None  # Plug-in Gait has no hindfoot


def test_davis_hip_centres_reproduce_plug_in_gait_from_the_pelvis_markers(trials):
    """With the four pelvis markers and the leg lengths (which the stroke file lacks),
    the Davis regression gives the file's own Plug-in Gait hip centres within 2 mm."""
    from edge_models.fetch import validation_path
    from rig.threed.validation import davis_hip_centres
    from rig.validation.c3d_trials import marker_points, read_c3d
    path = validation_path("gaitalytics_treadmill_events.c3d")
    c, p, labels, _ = read_c3d(path)
    pt = {n: marker_points(c, labels, n, path) for n in ("LASI", "RASI", "LPSI", "RPSI", "LFEP", "RFEP")}
    leg = {"left": float(p["PROCESSING"]["LLegLength"]["value"][0]),
           "right": float(p["PROCESSING"]["RLegLength"]["value"][0])}
    hjc = davis_hip_centres(pt["LASI"], pt["RASI"], pt["LPSI"], pt["RPSI"], leg)
    for side, fep in (("left", "LFEP"), ("right", "RFEP")):
        err = np.linalg.norm(hjc[side] - pt[fep], axis=1)
        assert np.max(err) < 2.0, side
    # a 10 % longer leg moves the centre by centimetres: the parameter matters
    far = davis_hip_centres(pt["LASI"], pt["RASI"], pt["LPSI"], pt["RPSI"], {s: 1.1 * v for s, v in leg.items()})
    assert np.median(np.linalg.norm(far["left"] - pt["LFEP"], axis=1)) > 8.0


def test_standing_trial_is_the_ofm_subject_standing_still():
    assets_or_skip([STATIC_FILE])
    t = load_trial(STANDING_TRIAL_NAMES[0])
    assert t.setting == "standing" and t.reference is None and t.belt_speed_m_s == 0.0 and len(t.t_s) == 912
    for side in ("left", "right"):  # still: the heel moves by less than a millimetre
        assert np.ptp(t.markers[(side, "heel")], axis=0).max() < 0.004
        assert abs(float(np.mean(t.lab.angles_deg[(side, "hindfoot_tibia_frontal_deg")]))
                   - {"left": 0.84, "right": 12.31}[side]) < 0.01


def test_rearfoot_relative_to_standing_cannot_be_checked_on_this_pair(trials):
    """Relative to each one's standing value ours and OFM's still differ by 7-9° RMSE:
    the static trial's heel marker sits 26-28 mm from where it sits in the walk (in the
    calcaneus markers' frame), so our standing heel point is another point; the standing
    value itself is triangulated within 1° of the markers'."""
    from rig.threed.validation import standing_rearfoot_check
    assets_or_skip([STATIC_FILE])
    c = standing_rearfoot_check(trials["ofm_overground"], load_trial("ofm_static"), 1.5, 0)
    for side in ("left", "right"):
        assert 25.0 < c.heel_marker_shift_mm[side] < 29.0
        assert abs(c.standing_ours_deg[side] - c.standing_markers_deg[side]) < 1.0
        assert 7.0 < c.rmse_deg[side] < 9.0
        assert c.excursion_markers_deg[side] < c.excursion_ofm_deg[side] - 5.0
    assert abs(c.standing_ofm_deg["right"] + 12.31) < 0.01 and abs(c.standing_markers_deg["right"] + 8.17) < 0.05


def test_ofm_trials_hip_centres_were_made_with_a_100_mm_leg_length():
    """The OFM file's Plug-in Gait hip centres are Davis's regression for a 100 mm leg (its
    subject parameters say 100 mm; the skeleton's thigh + shank are 450 + 439 mm): within
    1 mm of the file's, 32 mm from the ASIS markers, where an 890 mm leg puts them 137 mm
    away. A lab reference built on that is not a reference for the hip's position."""
    from edge_models.fetch import validation_path
    from rig.threed.validation import davis_hip_centres
    from rig.validation.c3d_trials import marker_points, read_c3d
    assets_or_skip(LAB_FILES[1:])
    path = validation_path(LAB_FILES[1])
    c, p, labels, _ = read_c3d(path)
    pt = {n: marker_points(c, labels, n, path) for n in ("LASI", "RASI", "LPSI", "RPSI", "LHJC", "RHJC")}
    assert float(p["PROCESSING"]["LLegLength"]["value"][0]) == float(p["PROCESSING"]["RLegLength"]["value"][0]) == 100.0
    radius = float(p["PROCESSING"]["MarkerDiameter"]["value"][0]) / 2
    for leg, near in ((100.0, True), (890.0, False)):
        hjc = davis_hip_centres(pt["LASI"], pt["RASI"], pt["LPSI"], pt["RPSI"], {"left": leg, "right": leg}, radius)
        for side in ("left", "right"):
            err = float(np.median(np.linalg.norm(hjc[side] - pt[side[0].upper() + "HJC"], axis=1)))
            assert (err < 1.0) if near else (err > 100.0), (leg, side, err)
    assert abs(float(np.median(np.linalg.norm(pt["LHJC"] - pt["LASI"], axis=1))) - 31.9) < 0.5
