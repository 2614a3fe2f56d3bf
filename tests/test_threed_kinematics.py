"""3D joint angles on skeletons built with known angles, and the whole 3D pipeline on the
real-walking validation set (markers seen by the four cameras with lens distortion and
1.5 px noise)."""
from __future__ import annotations

import numpy as np
import pytest

from rig.threed.kinematics import ANGLE_NAMES, joint_angles, pelvic_drop, pelvic_obliquity, step_width_m

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


def test_pelvis_obliquity_drop_and_step_width():
    ob = pelvic_obliquity(skeleton(left_hip_up_m=0.02))
    assert ob[0] == pytest.approx(np.degrees(np.arctan2(0.02, 0.2)))
    # left stance: the right hip falls 5 deg then recovers
    curve = np.array([0.0, 1.0, 3.0, 5.0, 2.0, 0.0])
    assert pelvic_drop(curve, np.ones(6, bool), "left") == pytest.approx(5.0)
    assert pelvic_drop(-curve, np.ones(6, bool), "right") == pytest.approx(5.0)
    assert np.isnan(pelvic_drop(curve, np.zeros(6, bool), "left"))
    pts = np.zeros((10, 33, 3))
    pts[:, 29, 1], pts[:, 30, 1] = 0.06, -0.05  # heels 11 cm apart
    assert np.allclose(step_width_m(pts, np.array([0, 6]), np.array([3, 9])), 0.11)


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
    """Knee and ankle on gaitkit's three trials, hip on the stroke trial (the other two
    carry a 'hip angle' that does not follow hip flexion: |r| < 0.8, not scored)."""
    scored = {}
    for r in results.values():
        for k, rmse in r.lab_rmse_deg.items():
            if r.lab_corr[k] >= 0.8:
                scored[(r.name, k)] = rmse
    assert ("healthy", "left hip_flexion_deg") not in scored
    assert ("stroke", "left hip_flexion_deg") in scored
    assert len(scored) == 14
    within = [k for k, v in scored.items() if v <= 3.0]
    assert len(within) >= 12, scored  # measured: all but stroke right hip 3.7 and right knee 3.3
    assert max(scored.values()) < 4.0
    assert results["healthy"].lab_sign["left ankle_dorsiflexion_deg"] == -1  # gaitkit: plantarflexion +


def test_real_walking_rearfoot_eversion_within_2_deg(results):
    per_stride = [e for r in results.values() for e in r.eversion_stance_error_deg]
    assert len(per_stride) >= 6
    assert max(per_stride) < 2.0
    for name in ("healthy", "parkinson", "stroke"):
        for side in ("left", "right"):
            assert results[name].angle_rmse_deg[f"{side} rearfoot_eversion_deg"] < 2.0
