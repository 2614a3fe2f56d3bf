"""Camera model, triangulation with outlier gate, and the temporal filter, against the
simulated walker's known 3D landmarks seen by the rig's four cameras with distortion."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rig.calibration.simulate import EXAMPLE_DISTORTION as DIST
from rig.sim._camera import default_cameras
from rig.sim.walker import SimulatedWalker, WalkerParams
from rig.threed.camera import CameraFileError, CameraModel, load_cameras, save_cameras
from rig.threed.smoothing import SavitzkyGolaySmoother
from rig.threed.triangulate import Triangulator


@pytest.fixture(scope="module")
def cams() -> dict[str, CameraModel]:
    return {k: CameraModel.from_sim(c, dist=DIST[k]) for k, c in default_cameras().items()}


@pytest.fixture(scope="module")
def world() -> np.ndarray:
    return SimulatedWalker(WalkerParams(), fps=60).world(np.arange(600))  # (600, 33, 3)


def observe(cams, world, noise_px=0.0, seed=0, vis=0.9):
    rng = np.random.default_rng(seed)
    out = {}
    for k, c in cams.items():
        lm = np.zeros(world.shape[:2] + (4,))
        lm[..., :2] = c.project(world) + rng.normal(0, noise_px, world.shape[:2] + (2,))
        lm[..., 3] = vis
        out[k] = lm
    return out


def test_undistort_inverts_projection(cams, world):
    cam = cams["left"]
    uv = cam.project(world)
    xn, yn = cam.undistort(uv[..., 0], uv[..., 1])
    pc = cam.to_camera(world)
    err_px = 1300 * np.hypot(xn - pc[..., 0] / pc[..., 2], yn - pc[..., 1] / pc[..., 2])
    assert err_px.max() < 0.05
    # off the image: the exact solver; NaN stays NaN
    x2, y2 = cam.undistort(np.array([-100.0, np.nan]), np.array([50.0, 10.0]))
    exact = cam.undistort_exact(np.array([[-100.0, 50.0]]))[0]
    assert abs(x2[0] - exact[0]) < 1e-6 and abs(y2[0] - exact[1]) < 1e-6
    assert np.isnan(x2[1]) and np.isnan(y2[1])


def test_camera_file_round_trip_and_errors(cams, tmp_path):
    path = tmp_path / "cameras.json"
    save_cameras(path, cams)
    back = load_cameras(path)
    assert set(back) == set(cams)
    assert np.allclose(back["front"].position_m, [3.0, 0.0, 0.9])
    assert np.allclose(back["rear"].dist, DIST["rear"])
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CameraFileError, match="not a gaitrig-cameras/1"):
        load_cameras(tmp_path / "bad.json")
    doc = json.loads(path.read_text())
    doc["cameras"][0]["R"] = np.eye(3).tolist()[:2] + [[1, 1, 1]]
    (tmp_path / "skew.json").write_text(json.dumps(doc))
    with pytest.raises(CameraFileError, match="not a rotation"):
        load_cameras(tmp_path / "skew.json")


def test_exact_without_noise_and_millimetres_with_noise(cams, world):
    tri = Triangulator(cams)
    exact = tri.triangulate(observe(cams, world))
    assert np.abs(exact.points_m - world).max() < 2e-4  # float32 + table: < 0.2 mm
    assert (exact.n_views == 4).all()
    noisy = tri.triangulate(observe(cams, world, noise_px=1.5))
    err_mm = 1000 * np.linalg.norm(noisy.points_m - world, axis=-1)
    assert 2.0 < np.median(err_mm) < 5.0
    assert 1.0 < np.median(noisy.error_px) < 2.5  # residual of 1.5 px noise, 4 views


def test_view_that_disagrees_is_dropped(cams, world):
    obs = observe(cams, world, noise_px=1.0)
    obs["rear"][100:150, 27, :2] += 60.0  # left ankle: the rear view is 60 px off
    res = Triangulator(cams, gate_px=15.0).triangulate(obs)
    assert (res.n_views[100:150, 27] == 3).all()
    assert res.views_dropped == 50
    err_mm = 1000 * np.linalg.norm(res.points_m[100:150, 27] - world[100:150, 27], axis=-1)
    assert err_mm.max() < 10.0
    # with the gate opened wide the bad view pulls the point off by centimetres
    loose = Triangulator(cams, gate_px=1e9).triangulate(obs)
    assert np.median(1000 * np.linalg.norm(loose.points_m[100:150, 27] - world[100:150, 27], axis=-1)) > 20


def test_two_disagreeing_views_leave_the_landmark_missing(cams, world):
    obs = observe(cams, world)
    pair = {k: obs[k] for k in ("left", "front")}
    pair["left"][10:20, 15, :2] += 50.0
    res = Triangulator({k: cams[k] for k in pair}).triangulate(pair)
    assert np.isnan(res.points_m[10:20, 15]).all()
    assert res.points_rejected == 10
    assert not np.isnan(res.points_m[:10]).any()


def test_low_visibility_and_missing_views_are_not_used(cams, world):
    obs = observe(cams, world)
    obs["left"][:, 25, 3] = 0.1  # below min_visibility
    obs["right"][:5] = np.nan  # nobody found
    res = Triangulator(cams).triangulate(obs)
    assert (res.n_views[5:, 25] == 3).all()
    assert (res.n_views[:5, 25] == 2).all()
    assert (res.n_views[:5, 0] == 3).all()
    assert np.abs(res.points_m - world).max() < 5e-4


def test_savitzky_golay_keeps_a_stop_sharp_and_bridges_short_gaps():
    fps = 120.0
    t = np.arange(240) / fps
    stop_s = 1.0
    x = np.where(t < stop_s, 1.2 * (t - stop_s), 0.0)  # heel decelerates to rest at 1.0 s
    rng = np.random.default_rng(3)
    noisy = x + rng.normal(0, 0.001, len(t))
    noisy[50:55] = np.nan  # short gap: bridged
    noisy[150:180] = np.nan  # 0.25 s gap: stays missing
    sm = SavitzkyGolaySmoother(window_s=0.1).smooth(noisy[:, None], fps)[:, 0]
    assert not np.isnan(sm[50:55]).any() and np.isnan(sm[150:180]).all()
    ok = ~np.isnan(noisy)
    assert np.std(sm[ok] - x[ok]) < 0.7 * np.std(noisy[ok] - x[ok])
    v = np.gradient(sm, 1 / fps)
    half = np.argmax((t > 0.8) & (v < 0.6))  # filtered speed falls through half the belt speed
    assert abs(t[half] - stop_s) <= 1 / fps  # zero phase: the event is not shifted


def test_benchmark_session_drops_the_corrupted_views_and_keeps_the_truth():
    """The session of benchmarks/bench_triangulate.py (there timed at 10 minutes; here one
    minute, 4 views, 120 fps, one view corrupted on 2 % of the indices): the corrupted views
    are dropped, nothing else rejected, and the filtered points stay within 2 mm median of
    the truth."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_triangulate import FPS, session

    from rig.threed.validation import rig_cameras
    world, views = session(1.0)
    assert world.shape == (7_200, 33, 3)
    res = Triangulator(rig_cameras()).triangulate(views)
    pts = SavitzkyGolaySmoother().smooth(res.points_m, FPS)
    assert 0.019 < res.views_dropped / (7_200 * 33) < 0.021 and res.points_rejected == 0  # 2 % injected
    assert np.nanmedian(1000 * np.linalg.norm(pts - world, axis=-1)) < 2.0
