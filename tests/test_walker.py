"""Physical truth of the simulated walker (rig/sim/walker.py); see docs/walker.md."""
from __future__ import annotations

import numpy as np
import pytest

from rig.keypoints import read_track
from rig.sim._body import HEEL_CONTACT_BELT_FRACTION, SWAP_PERMUTATION, TOE_ROLL_S
from rig.sim.walker import GaitTruth, SimulatedWalker, WalkerParams

SIDE = {"left": dict(hip=23, knee=25, ankle=27, heel=29, toe=31),
        "right": dict(hip=24, knee=26, ankle=28, heel=30, toe=32)}


def walker(fps=120.0, seed=1, **kw) -> SimulatedWalker:
    return SimulatedWalker(WalkerParams(**kw), fps=fps, seed=seed)


def frames_between(w: SimulatedWalker, t0: float, t1: float) -> np.ndarray:
    return np.arange(int(np.ceil(t0 * w.fps)), int(np.floor(t1 * w.fps)) + 1)


# --- stance on the belt -----------------------------------------------------------------
@pytest.mark.parametrize("view", ["left", "right"])
@pytest.mark.parametrize("speed", [0.6, 1.2, 1.8])
def test_stance_contact_moves_at_belt_speed_in_side_view(view, speed):
    w = walker(belt_speed_m_s=speed, cadence_steps_per_min=110 if speed < 1.5 else 130)
    tr = w.truth(2.0, 8.0)
    cam = w.cameras_[view]
    sign = 1.0 if w.facing_[view] == "right" else -1.0  # walker's forward in image x
    for side in ("left", "right"):
        for hs, to in zip(tr.heel_strike_s[side], tr.toe_off_s[side][tr.toe_off_s[side] > tr.heel_strike_s[side][0]]):
            st = to - hs
            # foot flat .. the forefoot roll (the toe landmark leaves the belt's speed
            # TOE_ROLL_S before foot off, as real toes do)
            idx = frames_between(w, hs + 0.15 * st, to - TOE_ROLL_S - 0.002)
            lm, world = w.clean_landmarks(view, idx), w.world(idx)
            depth = np.abs(world[:, SIDE[side]["toe"], 1] - cam.position_m[1])
            px_per_m = cam.focal_px / depth[:-1]
            vx = np.diff(lm[:, SIDE[side]["toe"], 0]) * w.fps
            np.testing.assert_allclose(vx, -sign * speed * px_per_m, rtol=1e-6)
            flat = frames_between(w, hs + 0.15 * st, hs + 0.5 * st)  # heel on belt too
            lmf, wf = w.clean_landmarks(view, flat), w.world(flat)
            vh = np.diff(lmf[:, SIDE[side]["heel"], 0]) * w.fps
            # the heel landmark's y follows the rearfoot construction, so allow 0.2 %
            hdepth = np.abs(wf[:-1, SIDE[side]["heel"], 1] - cam.position_m[1])
            np.testing.assert_allclose(vh, -sign * speed * cam.focal_px / hdepth, rtol=2e-3)


def test_heel_on_belt_at_heel_strike_and_toe_leaves_at_toe_off():
    w = walker(fps=1000.0, stride_time_cv_pct=3.0)
    tr = w.truth(1.0, 10.0)
    cam = w.cameras_["left"]
    for side in ("left", "right"):
        hs_idx = np.round(tr.heel_strike_s[side] * w.fps).astype(int)
        world = w.world(hs_idx)
        assert np.all(np.abs(world[:, SIDE[side]["heel"], 2]) < 1e-3)  # within 1 ms of HS
        before = w.world(hs_idx - 15)  # 15 ms before: heel still in the air
        assert np.all(before[:, SIDE[side]["heel"], 2] > 1e-4)
        # in the side image the heel sits on the belt line at heel strike
        lm = w.clean_landmarks("left", hs_idx)
        depth = cam.position_m[1] - world[:, SIDE[side]["heel"], 1]
        belt_y = cam.height_px / 2 + cam.focal_px * cam.position_m[2] / depth
        np.testing.assert_allclose(lm[:, SIDE[side]["heel"], 1], belt_y, atol=0.5)
        to_idx = np.floor(tr.toe_off_s[side] * w.fps).astype(int)
        assert np.all(np.abs(w.world(to_idx)[:, SIDE[side]["toe"], 2]) < 1e-9)
        assert np.all(w.world(to_idx + 20)[:, SIDE[side]["toe"], 2] > 1e-3)


def test_heel_farthest_forward_shortly_before_heel_strike():
    """Real feet (plate record, docs/validation.md): the heel's image velocity crosses zero
    22-48 ms before initial contact; at contact it moves back at ~0.63 of the belt speed."""
    w = walker(fps=1000.0)
    tr = w.truth(2.0, 12.0)
    idx = frames_between(w, 1.5, 12.5)
    heel_x = w.world(idx)[:, SIDE["left"]["heel"], 0]
    t = idx / w.fps
    v = np.gradient(heel_x, t) / w.params.belt_speed_m_s
    for hs in tr.heel_strike_s["left"]:
        m = np.abs(t - hs) < 0.3
        lead = t[m][np.argmax(heel_x[m])] - hs
        assert -0.055 <= lead <= -0.020
        assert v[np.argmin(np.abs(t - hs))] == pytest.approx(-HEEL_CONTACT_BELT_FRACTION, abs=0.02)


def test_toe_velocity_crosses_zero_at_toe_off_after_the_forefoot_roll():
    w = walker(fps=1000.0)
    tr = w.truth(2.0, 12.0)
    idx = frames_between(w, 1.5, 12.5)
    t = idx / w.fps
    v = np.gradient(w.world(idx)[:, SIDE["left"]["toe"], 0], t) / w.params.belt_speed_m_s
    for to in tr.toe_off_s["left"]:
        i = np.argmin(np.abs(t - to))
        assert v[i] == pytest.approx(0.0, abs=0.03)
        assert v[i - int(TOE_ROLL_S * 1000) - 5] == pytest.approx(-1.0, abs=1e-6)  # on the belt before the roll


def test_flat_foot_knob_lands_heel_and_toe_together():
    w = walker(fps=1000.0, contact_pitch_deg=0.0)
    tr = w.truth(2.0, 8.0)
    for hs in tr.heel_strike_s["left"]:
        world = w.world(np.array([int(round(hs * 1000))]))[0]
        assert world[SIDE["left"]["heel"], 2] < 1e-3 and world[SIDE["left"]["toe"], 2] < 0.01


def test_velocities_are_continuous():
    w = walker(fps=2000.0, stride_time_cv_pct=2.0)
    idx = frames_between(w, 2.0, 6.0)
    world = w.world(idx)
    for lmk in (29, 30, 31, 32, 27, 28):
        v = np.diff(world[:, lmk], axis=0) * w.fps
        jump = np.abs(np.diff(v, axis=0)).max()
        assert jump < 0.25, (lmk, jump)  # m/s between samples 0.5 ms apart


def test_feet_never_go_through_the_belt():
    for kw in (dict(), dict(belt_speed_m_s=0.6, cadence_steps_per_min=90),
               dict(belt_speed_m_s=1.8, cadence_steps_per_min=135)):
        w = walker(fps=240.0, **kw)
        world = w.world(frames_between(w, 0.0, 20.0))
        assert world[:, 29:33, 2].min() > -1e-3


# --- truth vs knobs -----------------------------------------------------------------------
@pytest.mark.parametrize("cadence,speed", [(80, 0.6), (110, 1.2), (140, 1.8), (100, 1.0)])
def test_truth_cadence_and_step_times_match_params(cadence, speed):
    w = walker(cadence_steps_per_min=cadence, belt_speed_m_s=speed, stride_time_cv_pct=2.0)
    tr = w.truth(0.0, 300.0)
    assert tr.cadence_steps_per_min == pytest.approx(cadence, rel=0.01)
    assert tr.step_time_s["left"] == pytest.approx(60 / cadence, rel=0.01)
    assert tr.stride_time_s["right"] == pytest.approx(120 / cadence, rel=0.01)
    assert tr.stride_time_cv_pct["left"] == pytest.approx(2.0, rel=0.25)
    assert tr.step_length_m["left"] == pytest.approx(speed * 60 / cadence, rel=0.01)
    # events alternate: L, R, L, R ... and every stride has one toe-off inside it
    both = sorted([(t, "L") for t in tr.heel_strike_s["left"]] + [(t, "R") for t in tr.heel_strike_s["right"]])
    assert all(a[1] != b[1] for a, b in zip(both, both[1:]))
    for side in ("left", "right"):
        hs, to = tr.heel_strike_s[side], tr.toe_off_s[side]
        assert np.all(np.histogram(to, bins=hs)[0] == 1)


def test_limp_stance_and_step_asymmetry_in_truth():
    w = walker(stance_pct=62, stance_pct_asymmetry=-6.0, step_time_asymmetry_pct=8.0, stride_time_cv_pct=1.0)
    tr = w.truth(0.0, 200.0)
    assert tr.stance_pct["left"] == pytest.approx(65.0, abs=0.2)
    assert tr.stance_pct["right"] == pytest.approx(59.0, abs=0.2)
    t = 120 / 110
    assert tr.step_time_s["right"] == pytest.approx(t / 2 * 1.04, rel=0.005)
    assert tr.step_time_s["left"] == pytest.approx(t / 2 * 0.96, rel=0.005)
    assert tr.symmetry_index_pct["step_time_s"] == pytest.approx(8.0, abs=0.5)
    # double support = stance_L + stance_R - 100 for any step timing
    assert tr.double_support_pct == pytest.approx(65 + 59 - 100, abs=0.3)
    # left step: from the right heel strike before it
    r, l_ = tr.heel_strike_s["right"], tr.heel_strike_s["left"]
    prev_r = r[np.searchsorted(r, l_) - 1][np.searchsorted(r, l_) > 0]
    steps = l_[np.searchsorted(r, l_) > 0] - prev_r
    assert np.mean(steps) == pytest.approx(tr.step_time_s["left"], rel=0.01)


def test_stance_in_truth_is_what_the_feet_do():
    """Stance % from foot contact in the rendered world equals truth (limp)."""
    w = walker(fps=500.0, stance_pct=60, stance_pct_asymmetry=8.0)
    tr = w.truth(2.0, 40.0)
    idx = frames_between(w, 2.0, 40.0)
    world, t = w.world(idx), idx / w.fps
    for side in ("left", "right"):
        toe_z = world[:, SIDE[side]["toe"], 2]
        heel_z = world[:, SIDE[side]["heel"], 2]
        contact = (np.minimum(toe_z, heel_z) < 1e-9)
        hs = tr.heel_strike_s[side]
        pct = [100 * contact[(t >= a) & (t < b)].mean() for a, b in zip(hs, hs[1:])]
        assert np.mean(pct) == pytest.approx(tr.stance_pct[side], abs=0.3)


# --- frontal-plane knobs --------------------------------------------------------------------
def rear_angles(lm: np.ndarray, side: str) -> np.ndarray:
    """Rearfoot angle (deg) from rear-view landmarks: heel-ankle line against the shank,
    eversion (heel lateral) positive; subject's left is image left in the rear view."""
    s = SIDE[side]
    shank = lm[:, s["ankle"], :2] - lm[:, s["knee"], :2]
    heel = lm[:, s["heel"], :2] - lm[:, s["ankle"], :2]
    a = np.degrees(np.arctan2(heel[:, 0], heel[:, 1]) - np.arctan2(shank[:, 0], shank[:, 1]))
    return -a if side == "left" else a


@pytest.mark.parametrize("ev_l,ev_r", [(6.0, 2.0), (-3.0, 10.0), (0.0, 0.0)])
def test_rearfoot_angle_in_rear_view_equals_knob(ev_l, ev_r):
    w = walker(rearfoot_eversion_left_deg=ev_l, rearfoot_eversion_right_deg=ev_r)
    tr = w.truth(2.0, 10.0)
    for side, ev in (("left", ev_l), ("right", ev_r)):
        hs, to = tr.heel_strike_s[side], tr.toe_off_s[side]
        to = to[to > hs[0]]
        idx = np.concatenate([frames_between(w, a + 0.2 * (b - a), a + 0.5 * (b - a)) for a, b in zip(hs, to)])
        ang = rear_angles(w.clean_landmarks("rear", idx), side)
        np.testing.assert_allclose(ang, ev, atol=0.05)
    assert tr.rearfoot_eversion_deg == {"left": ev_l, "right": ev_r}


def test_rearfoot_angle_survives_standing():
    w = walker(standing=True, rearfoot_eversion_left_deg=7.0, rearfoot_eversion_right_deg=1.0)
    lm = w.clean_landmarks("rear", np.arange(0, 600))
    assert np.allclose(rear_angles(lm, "left"), 7.0, atol=0.05)
    assert np.allclose(rear_angles(lm, "right"), 1.0, atol=0.05)


def hip_line_deg(lm: np.ndarray, view: str) -> np.ndarray:
    """Hip-line angle from an image, positive when the subject's left hip is higher."""
    left, right = lm[:, 23, :2], lm[:, 24, :2]
    d = left - right
    if view == "rear":  # subject's left is image left
        return np.degrees(np.arctan2(-d[:, 1], -d[:, 0]))
    return np.degrees(np.arctan2(-d[:, 1], d[:, 0]))


@pytest.mark.parametrize("obl", [-4.0, 0.0, 3.0])
def test_static_pelvic_obliquity_in_rear_and_front_views(obl):
    w = walker(standing=True, pelvic_obliquity_deg=obl)
    idx = np.arange(0, 1200)
    for view in ("rear", "front"):
        ang = hip_line_deg(w.clean_landmarks(view, idx), view)
        np.testing.assert_allclose(ang, obl, atol=0.05)
    assert w.truth(0, 10).pelvic_obliquity_deg == obl


def test_pelvic_drop_during_stance_in_rear_view():
    w = walker(pelvic_drop_left_deg=8.0, pelvic_drop_right_deg=2.0, pelvic_obliquity_deg=1.0,
               stride_time_cv_pct=0.0)
    tr = w.truth(2.0, 20.0)
    idx = frames_between(w, 2.0, 20.0)
    ang, t = hip_line_deg(w.clean_landmarks("rear", idx), "rear"), idx / w.fps
    hs_l, to_l = tr.heel_strike_s["left"], tr.toe_off_s["left"]
    peaks_l = [ang[(t >= a) & (t < b)].max() for a, b in zip(hs_l, to_l[to_l > hs_l[0]])]
    hs_r, to_r = tr.heel_strike_s["right"], tr.toe_off_s["right"]
    peaks_r = [ang[(t >= a) & (t < b)].min() for a, b in zip(hs_r, to_r[to_r > hs_r[0]])]
    # left stance: right side drops -> left hip higher by the drop (+ the static tilt)
    assert np.mean(peaks_l) == pytest.approx(1.0 + 8.0, abs=0.3)
    assert np.mean(peaks_r) == pytest.approx(1.0 - 2.0, abs=0.3)


# --- sagittal kinematics ------------------------------------------------------------------
def test_sagittal_angles_are_realistic():
    w = walker(fps=200.0, stride_time_cv_pct=0.0)
    idx = frames_between(w, 2.0, 12.0)
    world = w.world(idx)
    s = SIDE["left"]
    thigh = world[:, s["knee"]] - world[:, s["hip"]]
    shank = world[:, s["ankle"]] - world[:, s["knee"]]
    a_th = np.degrees(np.arctan2(thigh[:, 0], -thigh[:, 2]))
    a_sh = np.degrees(np.arctan2(shank[:, 0], -shank[:, 2]))
    knee = a_th - a_sh
    assert 60 <= knee.max() <= 75  # peak swing flexion (Perry: 60-70)
    assert knee.min() >= -1.0  # no hyperextension
    # thigh to vertical; the swing brakes into contact like real feet (docs/walker.md), so
    # the thigh reaches a little further forward than Perry's ~35°
    assert 25 <= a_th.max() <= 45 and -28 <= a_th.min() <= -8
    pelvis_z = world[:, 23, 2]
    assert 0.02 <= np.ptp(pelvis_z) <= 0.06  # vertical excursion of the pelvis


# --- views ----------------------------------------------------------------------------------
def test_facing_and_visibility_conventions():
    w = walker()
    assert w.facing_ == {"left": "left", "right": "right"}
    idx = np.arange(0, 600)
    for view in ("left", "right"):
        lm = w.clean_landmarks(view, idx)
        forward = 1 if w.header(view).facing == "right" else -1
        hip_x = 0.5 * (lm[:, 23, 0] + lm[:, 24, 0])
        assert np.all(forward * (lm[:, 0, 0] - hip_x) > 0)  # nose ahead of the hips
        near = list(range(11, 33, 2)) if view == "left" else list(range(12, 33, 2))
        far = list(range(12, 33, 2)) if view == "left" else list(range(11, 33, 2))
        assert np.all(lm[:, near, 3] >= 0.95) and np.all(lm[:, far, 3] <= 0.8)
        assert np.all(lm[:, far, 3] >= 0.5)
        assert np.mean(lm[:, near, 2]) < 0 < np.mean(lm[:, far, 2])  # z: nearer is negative
    rear, front = w.clean_landmarks("rear", idx), w.clean_landmarks("front", idx)
    assert np.all(rear[:, 23, 0] < rear[:, 24, 0])  # rear: subject's left on image left
    assert np.all(front[:, 23, 0] > front[:, 24, 0])
    for view in ("left", "rear"):  # the body fills ~70 % of the image height
        lm = w.clean_landmarks(view, idx)
        span = lm[:, 29:33, 1].max(1) - lm[:, 0:11, 1].min(1)
        assert 0.6 * 1088 < span.mean() < 0.8 * 1088
        assert np.all((lm[..., 0] > 0) & (lm[..., 0] < 1456) & (lm[..., 1] > 0) & (lm[..., 1] < 1088))


# --- artefacts ------------------------------------------------------------------------------
def test_missing_fraction_and_runs():
    w = walker(fps=60.0, missing_fraction=0.05, missing_run_s=0.05)
    idx = np.arange(60 * 600)
    for view in ("left", "front"):
        lm = w.landmarks(view, idx)
        miss = np.isnan(lm).all(axis=(1, 2))
        assert np.array_equal(miss, np.isnan(lm).any(axis=(1, 2)))  # whole rows only
        assert miss.mean() == pytest.approx(0.05, abs=0.01)
        starts = np.flatnonzero(np.diff(miss.astype(int)) == 1)
        assert miss.sum() / len(starts) > 1.5  # runs, not single frames
    assert not np.isnan(walker().landmarks("left", idx[:600])).any()


def test_swaps_exchange_left_and_right_labels_in_side_views_only():
    w = walker(swap_fraction=0.1, swap_run_s=0.2)
    idx = np.arange(120 * 300)
    for view in ("left", "right"):
        lm, clean = w.landmarks(view, idx), w.clean_landmarks(view, idx)
        sw = w.swapped(view, idx)
        assert sw.mean() == pytest.approx(0.1, abs=0.03)
        np.testing.assert_array_equal(lm[sw], clean[sw][:, SWAP_PERMUTATION])
        np.testing.assert_array_equal(lm[~sw], clean[~sw])
        assert np.array_equal(lm[sw][:, 27], clean[sw][:, 28])  # left ankle label = right ankle
        edges = np.flatnonzero(np.diff(np.r_[0, sw.astype(int), 0])).reshape(-1, 2)
        run = edges[:, 1] - edges[:, 0]
        assert run.mean() > 10  # runs of several frames (~0.2 s at 120 fps)
    for view in ("rear", "front"):
        np.testing.assert_array_equal(w.landmarks(view, idx), w.clean_landmarks(view, idx))


def test_noise_sigma():
    w = walker(noise_px=2.0)
    idx = np.arange(5000)
    d = w.landmarks("right", idx) - w.clean_landmarks("right", idx)
    assert np.std(d[..., :2]) == pytest.approx(2.0, rel=0.03)
    assert np.all(d[..., 2:] == 0)


def test_single_frame_and_batch_agree_bit_for_bit():
    w = walker(noise_px=1.5, missing_fraction=0.05, swap_fraction=0.08, stride_time_cv_pct=3.0)
    idx = np.arange(0, 20000, 1, dtype=np.int64)
    batch = w.render(idx)
    single = SimulatedWalker(w.params, fps=w.fps, seed=w.seed)  # fresh caches
    for i in [0, 1, 2, 511, 512, 4095, 4096, 7777, 19999] + list(range(3000, 3040)):
        for view in batch:
            np.testing.assert_array_equal(single.frame(view, i), batch[view][i])
    sparse = np.array([19999, 5, 12000, 7, 4096, 3001])  # unordered, sparse request path
    for view in ("left", "rear"):
        np.testing.assert_array_equal(single.landmarks(view, sparse), batch[view][sparse])
    # a different seed is a different walk
    other = SimulatedWalker(w.params, fps=w.fps, seed=w.seed + 1)
    assert not np.allclose(other.truth(0, 20).heel_strike_s["left"][:5], w.truth(0, 20).heel_strike_s["left"][:5])


def test_long_horizon_is_generated_lazily_and_deterministically():
    a, b = walker(stride_time_cv_pct=3.0), walker(stride_time_cv_pct=3.0)
    late = np.arange(120 * 3600, 120 * 3600 + 50)  # an hour in, asked first
    x = a.landmarks("left", late)
    b.truth(0.0, 4000.0)
    np.testing.assert_array_equal(x, b.landmarks("left", late))
    assert a.truth(3590, 3610).heel_strike_s["left"].tolist() == b.truth(3590, 3610).heel_strike_s["left"].tolist()


# --- standing ------------------------------------------------------------------------------
def test_standing_mode_has_no_events_and_stands_still():
    w = walker(standing=True)
    tr = w.truth(0.0, 60.0)
    assert isinstance(tr, GaitTruth) and tr.standing
    assert all(len(tr.heel_strike_s[s]) == 0 and len(tr.toe_off_s[s]) == 0 for s in ("left", "right"))
    assert np.isnan(tr.cadence_steps_per_min) and tr.belt_speed_m_s == 0.0
    world = w.world(np.arange(0, 120 * 60))
    assert np.ptp(world[:, [27, 28, 31, 32]], axis=0).max() < 1e-9  # feet do not move
    assert np.ptp(world[:, 29:31], axis=0).max() < 2e-3  # heel landmarks: rearfoot construction
    sway = np.ptp(world[:, 23, :2], axis=0)
    assert 0.002 < sway.max() < 0.03  # small postural sway of the pelvis


# --- files and params -------------------------------------------------------------------------
def test_write_files_round_trip(tmp_path):
    w = walker(fps=30.0, noise_px=1.0, missing_fraction=0.05)
    paths = w.write(tmp_path, duration_s=10.0)
    assert set(paths) == {"left", "right", "rear", "front"}
    for view, path in paths.items():
        tr = read_track(path)
        ref = w.track(view, 10.0)
        assert tr.header.view == view and tr.header.fps == 30.0 and tr.header.facing == ref.header.facing
        assert tr.header.extra["simulated"] is True
        np.testing.assert_array_equal(tr.index, np.arange(300))
        np.testing.assert_allclose(tr.t_s, ref.t_s, atol=1e-6)
        np.testing.assert_array_equal(tr.found, ref.found)
        np.testing.assert_allclose(tr.lm[tr.found], ref.lm[ref.found], atol=0.006)


@pytest.mark.parametrize("kw,name", [
    (dict(cadence_steps_per_min=20), "cadence_steps_per_min"),
    (dict(missing_fraction=1.5), "missing_fraction"),
    (dict(stance_pct=52, stance_pct_asymmetry=-6), "double support"),
])
def test_bad_params_are_rejected_by_name(kw, name):
    with pytest.raises(ValueError, match=name):
        WalkerParams(**kw)
    with pytest.raises(ValueError, match="view"):
        walker().landmarks("top", np.arange(3))
