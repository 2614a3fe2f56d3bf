"""Joint calibration of all the rig's cameras from ChArUco detections.

1. Each camera alone: ``cv2.calibrateCamera`` (Zhang 2000) on its own detections gives
   intrinsics, distortion and the board's pose in that camera per frame.
2. Cameras are chained through trigger indices seen by two of them (the hardware trigger
   makes the board's pose identical in both views), giving each camera's pose relative to
   a reference camera and each frame's board pose.
3. Bundle adjustment (Triggs et al. 2000) with ``scipy.optimize.least_squares``: all
   intrinsics (fx, fy, cx, cy, k1, k2, p1, p2, k3), camera poses and board poses together,
   minimising corner reprojection error with a Huber loss (a mislocated corner cannot
   drag the solution). Levenberg–Marquardt on the sparse normal equations (Marquardt 1963;
   the sparse direct solve avoids dense BLAS, which crawls on this shared 2-core
   machine). The board's printed square size makes the result metric.
4. World frame: the belt plane is fitted to the board's bottom edge in every frame where
   it stood on the belt (frames seen by two or more cameras; the close-ups in front of one
   camera are not on the belt), z up; x is the walking direction, taken as the rear→front
   camera line projected on the belt (the rig mounts them on the treadmill's axis; without
   them, the left→right line turned by 90°); the origin is on the belt under the centre
   of the cameras.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import csr_matrix, diags
from scipy.sparse.linalg import spsolve

from rig.threed.camera import CameraModel

from .board import BoardSpec, Detection

MIN_FRAMES_PER_CAMERA = 4
N_INTRINSICS = 9


class CalibrationError(ValueError):
    """Calibration cannot be solved from these detections; the message says what is missing."""


@dataclass
class CalibrationResult:
    cameras: dict[str, CameraModel]
    rms_px: dict[str, float]  # per camera, after bundle adjustment
    n_frames: dict[str, int]
    n_belt_frames: int
    belt_plane_rms_mm: float  # bottom-edge points' distance from the fitted belt plane


def rodrigues(rvecs: np.ndarray) -> np.ndarray:
    """(n, 3) rotation vectors -> (n, 3, 3) matrices, vectorised."""
    theta = np.linalg.norm(rvecs, axis=1)
    safe = np.where(theta > 1e-12, theta, 1.0)
    k = rvecs / safe[:, None]
    kx, ky, kz = k.T
    zero = np.zeros_like(kx)
    K = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=1).reshape(-1, 3, 3)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    R = np.eye(3) + s * K + (1 - c) * (K @ K)
    small = theta <= 1e-12
    R[small] = np.eye(3)
    return R


def _to_T(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, float))[0]
    T[:3, 3] = np.ravel(tvec)
    return T


def _from_T(T: np.ndarray) -> np.ndarray:
    return np.concatenate([cv2.Rodrigues(T[:3, :3])[0].ravel(), T[:3, 3]])


@dataclass
class Solution:
    x: np.ndarray
    cost: float
    iterations: int
    converged: bool


def levenberg_marquardt(residuals, jacobian, x0: np.ndarray, f_scale: float = 1.0, max_iter: int = 50,
                        tol: float = 1e-10) -> Solution:
    """Robust (Huber, threshold ``f_scale``, by iteratively reweighted least squares)
    Levenberg–Marquardt with Marquardt's diagonal scaling; ``jacobian`` returns a sparse matrix."""
    def weights(r):
        a = np.abs(r)
        return np.where(a <= f_scale, 1.0, f_scale / np.maximum(a, 1e-300))

    def cost(r):
        a = np.abs(r)
        return float(np.sum(np.where(a <= f_scale, 0.5 * r * r, f_scale * (a - 0.5 * f_scale))))

    x, r = x0.copy(), residuals(x0)
    c, lam = cost(r), 1e-3
    for it in range(1, max_iter + 1):
        J = jacobian(x)
        w = weights(r)
        JW = diags(w) @ J
        A = (J.T @ JW).tocsc()
        g = J.T @ (w * r)
        d = A.diagonal()
        improved = False
        for _ in range(10):
            dx = spsolve(A + diags(lam * np.maximum(d, 1e-12)), -g)
            r_new = residuals(x + dx)
            c_new = cost(r_new)
            if np.isfinite(c_new) and c_new < c:
                improved = True
                break
            lam *= 4.0
        if not improved:
            return Solution(x, c, it, True)
        done = (c - c_new) <= tol * c
        x, r, c, lam = x + dx, r_new, c_new, max(lam / 3.0, 1e-9)
        if done:
            return Solution(x, c, it, True)
    return Solution(x, c, max_iter, False)


class RigCalibrator:
    """Intrinsics + extrinsics of all cameras from their board detections (see module doc)."""

    def __init__(self, spec: BoardSpec, image_size_px: dict[str, tuple[int, int]], f_scale_px: float = 1.0,
                 max_iter: int = 50) -> None:
        self.spec = spec
        self.image_size_px = image_size_px
        self.f_scale_px = f_scale_px
        self.max_iter = max_iter

    def solve(self, detections: list[Detection]) -> CalibrationResult:
        by_view: dict[str, list[Detection]] = defaultdict(list)
        for d in detections:
            if d.view in self.image_size_px:
                by_view[d.view].append(d)
        missing = [v for v in self.image_size_px if len(by_view[v]) < MIN_FRAMES_PER_CAMERA]
        if missing:
            raise CalibrationError(f"too few board frames for {missing} "
                                   f"(need {MIN_FRAMES_PER_CAMERA} each with the board detected)")
        views = sorted(by_view)
        intr, board_in_cam = self._per_camera(views, by_view)
        cam_from_ref = self._chain(views, board_in_cam)
        ref_from_board = self._board_poses(views, board_in_cam, cam_from_ref)
        x = self._bundle_adjust(views, by_view, intr, cam_from_ref, ref_from_board)
        return self._result(views, by_view, x)

    # --- step 1 -----------------------------------------------------------------------
    def _per_camera(self, views, by_view):
        obj = self.spec.corners_m()
        intr, board_in_cam = {}, {}
        for v in views:
            dets = by_view[v]
            objp = [obj[d.ids].astype(np.float32) for d in dets]
            imgp = [d.corners_px.astype(np.float32) for d in dets]
            rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(objp, imgp, self.image_size_px[v], None, None)
            intr[v] = np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2], *dist.ravel()[:5]])
            board_in_cam[v] = {d.index: _to_T(r, t) for d, r, t in zip(dets, rvecs, tvecs)}
        return intr, board_in_cam

    # --- step 2 -----------------------------------------------------------------------
    @staticmethod
    def _chain(views, board_in_cam) -> dict[str, np.ndarray]:
        """Each camera's transform from the reference camera's frame (4×4), breadth first."""
        ref = max(views, key=lambda v: sum(len(board_in_cam[v].keys() & board_in_cam[w].keys()) for w in views if w != v))
        known = {ref: np.eye(4)}
        while len(known) < len(views):
            best = None
            for a in known:
                for b in views:
                    if b in known:
                        continue
                    shared = sorted(board_in_cam[a].keys() & board_in_cam[b].keys())
                    if shared and (best is None or len(shared) > len(best[2])):
                        best = (a, b, shared)
            if best is None:
                lost = sorted(set(views) - set(known))
                raise CalibrationError(f"cameras {lost} never saw the board at the same trigger index as the "
                                       f"others; turn the board so that it faces two cameras at once")
            a, b, shared = best
            cands = [board_in_cam[b][i] @ np.linalg.inv(board_in_cam[a][i]) @ known[a] for i in shared]
            known[b] = cands[int(np.argmin([np.linalg.norm(c[:3, 3] - np.median([d[:3, 3] for d in cands], 0))
                                            for c in cands]))]
        return known

    @staticmethod
    def _board_poses(views, board_in_cam, cam_from_ref) -> dict[int, np.ndarray]:
        poses = {}
        for v in views:
            for i, T in board_in_cam[v].items():
                poses.setdefault(i, np.linalg.inv(cam_from_ref[v]) @ T)
        return poses

    # --- step 3 -----------------------------------------------------------------------
    def _bundle_adjust(self, views, by_view, intr, cam_from_ref, ref_from_board) -> dict:
        ref = next(v for v in views if np.allclose(cam_from_ref[v], np.eye(4)))
        movable = [v for v in views if v != ref]
        boards = sorted(ref_from_board)
        b_index = {i: k for k, i in enumerate(boards)}
        obj = self.spec.corners_m()
        obs_view, obs_board, obs_obj, obs_px = [], [], [], []
        for vi, v in enumerate(views):
            for d in by_view[v]:
                obs_view.append(np.full(len(d.ids), vi))
                obs_board.append(np.full(len(d.ids), b_index[d.index]))
                obs_obj.append(obj[d.ids])
                obs_px.append(d.corners_px)
        ov, ob = np.concatenate(obs_view), np.concatenate(obs_board)
        oo, op = np.concatenate(obs_obj), np.concatenate(obs_px)
        nv, nm, nb = len(views), len(movable), len(boards)
        x0 = np.concatenate([np.concatenate([intr[v] for v in views]),
                             np.concatenate([_from_T(cam_from_ref[v]) for v in movable]) if movable else [],
                             np.concatenate([_from_T(ref_from_board[i]) for i in boards])])
        ext_slot = np.array([movable.index(v) if v in movable else -1 for v in views])

        def unpack(x):
            ki = x[: nv * N_INTRINSICS].reshape(nv, N_INTRINSICS)
            ce = np.vstack([np.zeros((1, 6)), x[nv * N_INTRINSICS: nv * N_INTRINSICS + 6 * nm].reshape(nm, 6)])
            be = x[nv * N_INTRINSICS + 6 * nm:].reshape(nb, 6)
            return ki, ce, be

        def residuals(x):
            ki, ce, be = unpack(x)
            Rb, Rc = rodrigues(be[:, :3]), rodrigues(ce[:, :3])
            pr = np.einsum("nij,nj->ni", Rb[ob], oo) + be[ob, 3:]
            slot = ext_slot[ov] + 1
            pc = np.einsum("nij,nj->ni", Rc[slot], pr) + ce[slot, 3:]
            k = ki[ov]
            xn, yn = pc[:, 0] / pc[:, 2], pc[:, 1] / pc[:, 2]
            r2 = xn * xn + yn * yn
            radial = 1 + r2 * (k[:, 4] + r2 * (k[:, 5] + r2 * k[:, 8]))
            xd = xn * radial + 2 * k[:, 6] * xn * yn + k[:, 7] * (r2 + 2 * xn * xn)
            yd = yn * radial + k[:, 6] * (r2 + 2 * yn * yn) + 2 * k[:, 7] * xn * yn
            u, w = k[:, 0] * xd + k[:, 2], k[:, 1] * yd + k[:, 3]
            return np.column_stack([u - op[:, 0], w - op[:, 1]]).ravel()

        groups = self._column_groups(ov, ob, ext_slot, nv, nm)

        def jacobian(x):
            """Forward differences, one residual evaluation per column group: a residual
            depends on one camera and one board, so the same parameter of every camera
            (or every board) can be perturbed at once. Sparse (21 entries per row)."""
            r0 = residuals(x)
            rows, cols, vals = [], [], []
            for cols_of_obs in groups:
                valid = np.repeat(cols_of_obs >= 0, 2)
                c2 = np.repeat(cols_of_obs, 2)[valid]
                touched = np.unique(c2)
                h = np.zeros(len(x))
                h[touched] = 1e-6 * np.maximum(np.abs(x[touched]), 1e-2)
                dr = residuals(x + h) - r0
                rows.append(np.nonzero(valid)[0])
                cols.append(c2)
                vals.append(dr[valid] / h[c2])
            return csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(len(r0), len(x)))

        sol = levenberg_marquardt(residuals, jacobian, x0, f_scale=self.f_scale_px, max_iter=self.max_iter)
        self.last_solution = sol
        if not sol.converged:
            raise CalibrationError(f"bundle adjustment did not converge in {sol.iterations} iterations")
        ki, ce, be = unpack(sol.x)
        res = residuals(sol.x).reshape(-1, 2)
        return dict(ref=ref, movable=movable, boards=boards, intr=ki, cam_ext=ce, board_ext=be,
                    ext_slot=ext_slot, res=res, obs_view=ov)

    @staticmethod
    def _column_groups(ov, ob, ext_slot, nv, nm) -> list[np.ndarray]:
        """Per group, the parameter column each observation depends on (-1: none)."""
        groups = [ov * N_INTRINSICS + j for j in range(N_INTRINSICS)]
        groups += [np.where(ext_slot[ov] >= 0, nv * N_INTRINSICS + 6 * ext_slot[ov] + j, -1) for j in range(6)]
        groups += [nv * N_INTRINSICS + 6 * nm + 6 * ob + j for j in range(6)]
        return groups

    # --- step 4 -----------------------------------------------------------------------
    def _result(self, views, by_view, s) -> CalibrationResult:
        cam_T = {v: _to_T(s["cam_ext"][s["ext_slot"][i] + 1, :3], s["cam_ext"][s["ext_slot"][i] + 1, 3:])
                 for i, v in enumerate(views)}
        seen = defaultdict(int)
        for v in views:
            for d in by_view[v]:
                seen[d.index] += 1
        belt = [k for k, i in enumerate(s["boards"]) if seen[i] >= 2]
        if len(belt) < 3:
            raise CalibrationError("fewer than 3 frames show the board to two cameras at once; "
                                   "stand it on the belt and turn it slowly")
        edge = self.spec.bottom_edge_m
        pts, centres = [], []
        for k in belt:
            R = cv2.Rodrigues(s["board_ext"][k, :3])[0]
            pts.append(edge @ R.T + s["board_ext"][k, 3:])
            centres.append(R @ np.array([self.spec.squares_x, self.spec.squares_y, 0]) * self.spec.square_m / 2
                           + s["board_ext"][k, 3:])
        pts = np.concatenate(pts)
        p0 = pts.mean(axis=0)
        normal = np.linalg.svd(pts - p0)[2][2]
        if np.mean(np.asarray(centres) - p0, axis=0) @ normal < 0:
            normal = -normal
        plane_rms_mm = float(np.sqrt(np.mean(((pts - p0) @ normal) ** 2)) * 1000)
        centre_ref = {v: -cam_T[v][:3, :3].T @ cam_T[v][:3, 3] for v in views}
        if "front" in centre_ref and "rear" in centre_ref:
            ahead = centre_ref["front"] - centre_ref["rear"]
        elif "left" in centre_ref and "right" in centre_ref:
            ahead = np.cross(centre_ref["left"] - centre_ref["right"], normal)
        else:
            raise CalibrationError("the walking direction needs the front and rear (or left and right) cameras")
        x_ax = ahead - (ahead @ normal) * normal
        x_ax /= np.linalg.norm(x_ax)
        A = np.stack([x_ax, np.cross(normal, x_ax), normal])  # rows: world axes in the reference frame
        c_mean = np.mean(list(centre_ref.values()), axis=0)
        origin = c_mean - ((c_mean - p0) @ normal) * normal
        cams, rms, n_frames = {}, {}, {}
        for i, v in enumerate(views):
            Rv, tv = cam_T[v][:3, :3], cam_T[v][:3, 3]
            fx, fy, cx, cy, *dist = s["intr"][i]
            r = s["res"][s["obs_view"] == i]
            rms[v] = float(np.sqrt(np.mean(np.sum(r * r, axis=1))))
            n_frames[v] = len(by_view[v])
            w, h = self.image_size_px[v]
            cams[v] = CameraModel(v, w, h, fx, fy, cx, cy, np.asarray(dist), Rv @ A.T, Rv @ origin + tv,
                                  reprojection_error_px=round(rms[v], 4))
        return CalibrationResult(cams, rms, n_frames, len(belt), plane_rms_mm)
