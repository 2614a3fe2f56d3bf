"""3D joint angles on skeletons built with known angles, and the whole 3D pipeline on the
real-walking validation set (markers seen by the four cameras with lens distortion and
1.5 px noise)."""
from __future__ import annotations

import numpy as np
import pytest

from rig.threed.kinematics import ANGLE_NAMES, joint_angles, pelvic_drop, pelvic_obliquity, steps_3d

L_THIGH, L_SHANK, L_FOOT = 0.42, 0.40, 0.20


def skeleton(hip_flex=0.0, knee_flex=0.0, dorsi=0.0, valgus_m=0.0, heel_lateral_m=0.0, toe_out=0.0,
             left_hip_up_m=0.0) -> np.ndarray:
    """One frame (1, 33, 3); both legs mirror images (angles in degrees)."""
    pts = np.zeros((1, 33, 3))
    th, kn, df, fp = np.radians([hip_flex, knee_flex, dorsi, toe_out])
    for side, s, (hip_i, knee_i, ankle_i, heel_i, toe_i) in (("left", 1, (23, 25, 27, 29, 31)),
                                                              ("right", -1, (24, 26, 28, 30, 32))):
        hip = np.array([0.0, s * 0.1, 0.9 + (left_hip_up_m if side == "left" else 0.0)])
        knee = hip + L_THIGH * np.array([np.sin(th), 0, -np.cos(th)]) - np.array([0, s * valgus_m, 0])
        a = th - kn  # shank from vertical, forward +
        ankle = knee + L_SHANK * np.array([np.sin(a), 0, -np.cos(a)])
        if valgus_m:
            ankle = hip + np.array([0, 0, -(L_THIGH + L_SHANK)])  # straight leg, knee pushed medially
        fwd = np.array([np.cos(a + df), 0, np.sin(a + df)])
        fwd = np.array([fwd[0] * np.cos(fp), s * fwd[0] * np.sin(fp), fwd[2]])
        heel = ankle - 0.05 * fwd + np.array([0, 0, -0.06]) + np.array([0, s * heel_lateral_m, 0])
        pts[0, [hip_i, knee_i, ankle_i, heel_i]] = hip, knee, ankle, heel
        pts[0, toe_i] = heel + L_FOOT * fwd
    return pts


@pytest.mark.parametrize("side", ["left", "right"])
def test_sagittal_angles_are_the_constructed_ones(side):
    a = joint_angles(skeleton(hip_flex=25, knee_flex=40, dorsi=12), side)
    assert set(a) == set(ANGLE_NAMES)
    assert a["hip_flexion_deg"][0] == pytest.approx(25, abs=1e-9)
    assert a["knee_flexion_deg"][0] == pytest.approx(40, abs=1e-9)
    assert a["ankle_dorsiflexion_deg"][0] == pytest.approx(12, abs=1e-9)
    assert a["hip_adduction_deg"][0] == pytest.approx(0, abs=1e-9)
    assert a["knee_valgus_deg"][0] == pytest.approx(0, abs=1e-9)
    ext = joint_angles(skeleton(hip_flex=-10, knee_flex=5, dorsi=-20), side)
    assert ext["hip_flexion_deg"][0] == pytest.approx(-10) and ext["ankle_dorsiflexion_deg"][0] == pytest.approx(-20)


@pytest.mark.parametrize("side", ["left", "right"])
def test_frontal_and_transverse_measures_have_clinical_signs(side):
    valgus = joint_angles(skeleton(valgus_m=0.03), side)["knee_valgus_deg"][0]
    assert valgus == pytest.approx(np.degrees(np.arctan(0.03 / L_THIGH) + np.arctan(0.03 / L_SHANK)), abs=1e-6)
    ev = joint_angles(skeleton(heel_lateral_m=0.01), side)["rearfoot_eversion_deg"][0]
    heel_below_ankle = 0.06  # the heel's drop under the ankle, across the foot (foot flat)
    assert ev == pytest.approx(np.degrees(np.arctan2(0.01, heel_below_ankle)), abs=0.05)
    assert joint_angles(skeleton(heel_lateral_m=-0.01), side)["rearfoot_eversion_deg"][0] < -9
    fpa = joint_angles(skeleton(toe_out=10), side)["foot_progression_deg"][0]
    assert fpa == pytest.approx(10, abs=1e-9)


def test_pelvis_obliquity_drop_and_steps():
    ob = pelvic_obliquity(skeleton(left_hip_up_m=0.02))
    assert ob[0] == pytest.approx(np.degrees(np.arctan2(0.02, 0.2)))
    # left stance: the right hip falls 5 deg then recovers
    curve = np.array([0.0, 1.0, 3.0, 5.0, 2.0, 0.0])
    assert pelvic_drop(curve, np.ones(6, bool), "left") == pytest.approx(5.0)
    assert pelvic_drop(-curve, np.ones(6, bool), "right") == pytest.approx(5.0)
    assert np.isnan(pelvic_drop(curve, np.zeros(6, bool), "left"))


def test_steps_from_feet_positions_and_belt_speed():
    """A walker drifting back on a 1 m/s belt: heels land 0.3 m ahead of the hips; the
    belt carries a planted heel back 1 m/s. Right strikes at 0.5 s and 1.5 s, left at 1.0 s
    and 2.0 s; the left lands 2 cm shorter (0.28 m ahead)."""
    t = np.arange(0, 2.5, 0.01)
    pts = np.zeros((len(t), 33, 3))
    for side, i, strikes, ahead, y in (("left", 29, (1.0, 2.0), 0.28, 0.06), ("right", 30, (0.5, 1.5), 0.30, -0.05)):
        for k, ts in enumerate(strikes):
            on = (t >= ts) & (t < ts + 0.6)
            pts[on, i, 0] = ahead - 1.0 * (t[on] - ts)  # planted: carried back by the belt
            pts[on, i, 1] = y
    hs = {"left": np.array([1.0, 2.0]), "right": np.array([0.5, 1.5])}
    st = steps_3d(pts, t, hs, 1.0, 0.8)
    # left step: left heel at +0.28 (t 1.0) - right heel at +0.30 (t 0.5) + 1 m/s x 0.5 s
    assert st["left"]["step_length_m"] == pytest.approx([0.48, 0.48])
    assert st["right"]["step_length_m"] == pytest.approx([0.52])  # 0.30 - 0.28 + 0.5; the first has no left before it
    assert st["left"]["step_width_m"] == pytest.approx([0.11, 0.11])
    assert steps_3d(pts, t, hs, 1.0, 0.4)["left"]["step_length_m"] == []  # longer than the longest step allowed
    hs_missing = {"left": np.array([1.0, 1.3]), "right": np.array([0.5])}  # two left strikes, no right between
    assert len(steps_3d(pts, t, hs_missing, 1.0, 0.8)["left"]["step_length_m"]) == 1


@pytest.fixture(scope="module")
def results():
    from rig.threed.validation import evaluate
    from rig.validation import load_trials
    return {t.name: evaluate(t, noise_px=1.5, seed=0) for t in load_trials()}


def test_real_walking_joint_centres_within_10_mm(results):
    assert set(results) == {"treadmill", "healthy", "parkinson", "stroke"}
    for r in results.values():
        for joint, err_mm in r.joint_error_mm.items():
            assert err_mm < 10.0, (r.name, joint, err_mm)
            assert err_mm < 3.0  # measured 1.3-1.8 mm
        for k, v in r.angle_rmse_deg.items():  # triangulated vs the markers' own angles
            if "eversion" not in k:
                assert v < 1.5, (r.name, k, v)


def test_real_walking_sagittal_angles_against_the_lab(results):
    """Only the stroke trial carries a lab model (Plug-in Gait); compared raw, no offset.
    Ankle within 3 deg; hip and knee are not (docs/3d.md: the file's hip point is the
    ASIS/PSIS midpoint, not the joint centre), and the markers themselves miss by as much,
    so the gap is the stand-in, not the triangulation."""
    assert {r.name for r in results.values() if r.lab_rmse_deg} == {"stroke"}
    st = results["stroke"]
    assert len(st.lab_rmse_deg) == 6
    for side in ("left", "right"):
        assert st.lab_rmse_deg[f"{side} ankle_dorsiflexion_deg"] < 1.5  # measured 1.0-1.2
        for k in ("hip_flexion_deg", "knee_flexion_deg"):
            key = f"{side} {k}"
            assert 2.5 < st.lab_rmse_deg[key] < 4.5, key  # measured hip 4.0/4.2, knee 3.4/4.1: not met
            assert abs(st.lab_rmse_deg[key] - st.lab_rmse_markers_deg[key]) < 0.2  # the markers miss as much
            assert st.lab_bias_deg[key] < -2.0  # ours lower: the thigh drawn to a point behind the joint


def test_real_walking_file_angles_are_gaitkit_three_point_angles(results):
    """healthy/parkinson: the same formula on our triangulated points reproduces the file."""
    for name in ("healthy", "parkinson"):
        r = results[name]
        assert len(r.file_angle_rmse_deg) == 4 and not r.lab_rmse_deg
        assert max(r.file_angle_rmse_deg.values()) < 1.0, r.file_angle_rmse_deg  # measured 0.3-0.5


def test_real_walking_rearfoot_is_excluded_with_its_reason(results):
    """No real trial's markers define a rearfoot angle; each says why and is not scored."""
    assert "sagittal-only" in results["treadmill"].rearfoot_excluded
    for name in ("healthy", "parkinson", "stroke"):
        why = results[name].rearfoot_excluded
        assert why and "not a rearfoot angle" in why and "mm below the ankle marker" in why
        assert not results[name].eversion_stance_error_deg
        assert "left rearfoot_eversion_deg" not in results[name].angle_rmse_deg


def test_rearfoot_eversion_within_2_deg_on_the_walker():
    """Per-stride stance mean (what the report shows, what an orthotic comparison uses)
    and per-frame RMSE over stance, both within 2 deg, against the 3D definition on the
    walker's own landmarks."""
    from rig.threed.validation import walker_rearfoot
    c = walker_rearfoot({"left": 12.0, "right": 4.0}, seed=1)
    for side in ("left", "right"):
        assert len(c.per_stride_error_deg[side]) >= 15
        assert max(c.per_stride_error_deg[side]) < 2.0  # measured max 1.6
        assert c.per_frame_rmse_deg[side] < 2.0  # measured 1.7-1.8
    assert c.true_mean_deg["left"] - c.true_mean_deg["right"] > 6.0  # the two feet differ as set


def test_davis_hip_centres_explain_the_hip_and_knee_gap_but_depend_on_the_pelvis():
    """Sensitivity, not a score: with Davis hip centres the dynamic difference is ~1 deg,
    and the bias follows the assumed pelvic depth (the file does not carry it)."""
    from rig.threed.validation import davis_sensitivity
    from rig.validation import load_trial
    sens = davis_sensitivity(load_trial("stroke"))
    assert sorted(sens) == [0.15, 0.18, 0.21]
    for side in ("left", "right"):
        hip = [sens[d][f"{side} hip_flexion_deg"] for d in sorted(sens)]
        assert all(sd < 1.2 for _, _, sd in hip)  # the stand-in's dynamic part gone (was 2.2-3.0)
        biases = [b for _, b, _ in hip]
        assert biases[0] > biases[1] > biases[2] and biases[0] - biases[2] > 3.0  # ~0.65 deg per 10 mm
    assert davis_sensitivity(load_trial("healthy")) == {}


def test_3d_step_length_on_real_walking_against_the_markers():
    """analyze_tracks with the calibration on the rendered trials: 3D step length (feet +
    belt) against the markers' steps at the reference events; on the Parkinson's trial's
    asymmetric steps belt speed x step time misses by ~7 cm, the 3D measure does not."""
    from rig.threed.validation import step_check
    from rig.validation import load_trial
    for name in ("treadmill", "healthy", "parkinson"):
        c = step_check(load_trial(name))
        assert c.why_not is None and min(c.n_steps.values()) >= 1
        for side in ("left", "right"):
            assert abs(c.step_length_3d_m[side] - c.step_length_markers_m[side]) < 0.03, (name, c)  # measured 0-19 mm
        assert abs(c.step_width_3d_m - c.step_width_markers_m) < 0.015, (name, c)
    pd = step_check(load_trial("parkinson"))
    assert pd.step_length_markers_m["right"] - pd.step_length_markers_m["left"] > 0.1  # asymmetric steps
    for side in ("left", "right"):
        assert abs(pd.step_length_2d_m[side] - pd.step_length_markers_m[side]) > 0.05
    assert "no reference events" in step_check(load_trial("stroke")).why_not
