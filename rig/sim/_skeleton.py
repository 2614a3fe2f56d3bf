"""Assemble the 33 BlazePose landmarks on the treadmill frame for an array of times."""
from __future__ import annotations

import numpy as np

from ._anthro import Body
from ._body import (_FACE, KNEE_DEG, KNEE_U, PELVIS_ROT_DEG, PELVIS_SWAY_M, SOFTMIN_M,
                    TRUNK_LEAN_DEG, FootModel, cos_interp, leg_reach, rot_z, smoothstep,
                    speed_scale, two_link_ik)

SIDES = ("left", "right")
_LAT = {"left": 1.0, "right": -1.0}
# BlazePose indices per side: shoulder, elbow, wrist, pinky, index, thumb, hip, knee, ankle,
# heel, foot index
_IDX = {"left": (11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
        "right": (12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32)}


def _sines(t, amps, periods, phases):
    out = np.zeros_like(t)
    for a, p, ph in zip(amps, periods, phases):
        out += a * np.sin(2 * np.pi * t / p + ph)
    return out


class Skeleton:
    """World landmarks (n, 33, 3) from the schedule and the knobs; see ``docs/walker.md``."""

    def __init__(self, params, schedule, seed: int) -> None:
        self.p = params
        self.sched = schedule
        self.body = Body(params.height_m)
        b = self.body
        obl = np.radians(params.pelvic_obliquity_deg)
        # leg-length discrepancy that produces the static obliquity (left higher: right short)
        dl = b.hip_separation_m * np.sin(obl) / 2
        self.shank = {"left": b.shank_m + dl, "right": b.shank_m - dl}
        self.feet = {s: FootModel(b, params.belt_speed_m_s, s, params.contact_pitch_deg) for s in SIDES}
        ph = np.random.default_rng([seed, 21]).uniform(0, 2 * np.pi, 8)
        self._phases = ph
        self.k = speed_scale(params.belt_speed_m_s)

    # --- slow drift of the walker on the belt (fore-aft wander), also used for landings
    def drift_x(self, t):
        if self.p.standing:
            return _sines(t, (0.004, 0.003, 0.002), (9.0, 4.1, 2.3), self._phases[:3])
        return _sines(t, (0.015, 0.01), (41.0, 17.0), self._phases[:2])

    def drift_y(self, t):
        if self.p.standing:
            return _sines(t, (0.003, 0.002, 0.0015), (7.0, 3.3, 1.9), self._phases[3:6])
        return _sines(t, (0.008,), (29.0,), self._phases[6:7])

    def world(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.p.standing:
            feet, phase = self._feet_standing(t), None
        else:
            feet, phase = self._feet_walking(t)
        out = np.empty((len(t), 33, 3))
        pelvis = self._pelvis(t, feet, phase)
        self._legs(out, pelvis, feet)
        self._upper_body(out, t, pelvis, phase)
        return out

    # --- feet -------------------------------------------------------------------------
    def _feet_walking(self, t):
        sc = self.sched
        sc.ensure(float(t.max()) if len(t) else 0.0)
        feet, phase = {}, {}
        for side in SIDES:
            i = sc.stride_index(side, t)
            hs, to = sc.hs[side], sc.to[side]
            heel, ankle, toe, stance, u, s = self.feet[side].evaluate(
                t, (hs[i], hs[i + 1]), to[i], (sc.land_x[side][i], sc.land_x[side][i + 1]),
                (sc.land_y[side][i], sc.land_y[side][i + 1]), _LAT[side] * self.body.step_width_m / 2)
            w = np.where(stance, 1 - smoothstep((u - 0.68) / 0.12), smoothstep((s - 0.8) / 0.2))
            knee = np.where(stance, cos_interp(u, KNEE_U, KNEE_DEG), KNEE_DEG[0])
            feet[side] = dict(heel=heel, ankle=ankle, toe=toe, w=w, knee_deg=knee, stance=stance, u=u)
            phase[side] = (t - hs[i]) / (hs[i + 1] - hs[i])  # stride phase 0..1 from HS
        e = sc.all_hs
        k = np.searchsorted(e, t, side="right") - 1
        phase["step"] = (t - e[k]) / (e[k + 1] - e[k])
        return feet, phase

    def _feet_standing(self, t):
        b, n = self.body, len(t)
        feet = {}
        for side in SIDES:
            fm = self.feet[side]
            heel = np.zeros((n, 3))
            heel[:, 0] = -b.ankle_forward_m
            heel[:, 1] = _LAT[side] * (b.step_width_m / 2 + 0.02)
            fwd, up = fm._frame(np.zeros(n))
            feet[side] = dict(heel=heel, toe=heel + b.foot_length_m * fwd,
                              ankle=heel + b.ankle_forward_m * fwd + b.ankle_height_m * up,
                              w=np.ones(n), knee_deg=np.full(n, 4.0), stance=np.ones(n, bool),
                              u=np.full(n, 0.5))
        return feet

    # --- pelvis -----------------------------------------------------------------------
    def _list_deg(self, feet, t):
        """Frontal pelvic tilt, positive = left hip higher (static + contralateral drop)."""
        lam = np.full(len(t), self.p.pelvic_obliquity_deg)
        if self.p.standing:
            return lam
        for side, drop in (("left", self.p.pelvic_drop_left_deg), ("right", self.p.pelvic_drop_right_deg)):
            f = feet[side]
            u = np.clip(f["u"], 0.0, 1.0)
            bump = np.where(f["stance"], np.sin(np.pi * u ** 0.6) ** 2, 0.0)  # peak at ~20 % cycle
            lam += _LAT[side] * drop * bump
        return lam

    def _pelvis(self, t, feet, phase):
        n, b = len(t), self.body
        c = np.zeros((n, 3))
        c[:, 0] = self.drift_x(t)
        c[:, 1] = self.drift_y(t)
        if phase is not None:
            # CoM brakes after each heel strike: most forward at HS (treadmill frame)
            c[:, 0] += 0.01 * self.k * np.cos(2 * np.pi * phase["step"])
            c[:, 1] += PELVIS_SWAY_M * np.cos(2 * np.pi * (phase["left"] - 0.3))
            rot = -np.radians(PELVIS_ROT_DEG) * np.cos(2 * np.pi * phase["left"])
        else:
            rot = np.zeros(n)
        lam = np.radians(self._list_deg(feet, t))
        half = b.hip_separation_m / 2
        hips, demand, logw = {}, [], []
        for side in SIDES:
            s = _LAT[side] * half
            off = np.stack([-np.sin(rot) * s * np.cos(lam), np.cos(rot) * s * np.cos(lam), s * np.sin(lam)], 1)
            hips[side] = off
            f = feet[side]
            dxy = f["ankle"][:, :2] - (c[:, :2] + off[:, :2])
            reach = leg_reach(b.thigh_m, self.shank[side], f["knee_deg"])
            vert = np.sqrt(np.maximum(reach ** 2 - np.sum(dxy ** 2, 1), (0.92 * reach) ** 2))
            demand.append(f["ankle"][:, 2] + vert - off[:, 2])
            with np.errstate(divide="ignore"):
                logw.append(np.log(f["w"]))
        tau = SOFTMIN_M
        c[:, 2] = -tau * np.logaddexp(logw[0] - demand[0] / tau, logw[1] - demand[1] / tau)
        return dict(centre=c, rot=rot, lam=lam, hips={s: c + hips[s] for s in SIDES})

    # --- legs and upper body ----------------------------------------------------------
    def _legs(self, out, pelvis, feet):
        pole = np.array([1.0, 0.0, 0.0])
        for side in SIDES:
            _, _, _, _, _, _, ih, ik, ia, ihl, it = _IDX[side]
            hip, f = pelvis["hips"][side], feet[side]
            out[:, ih] = hip
            out[:, ik] = two_link_ik(hip, f["ankle"], self.body.thigh_m, self.shank[side], pole)
            out[:, ia] = f["ankle"]
            out[:, ihl] = f["heel"]
            out[:, it] = f["toe"]

    def _upper_body(self, out, t, pelvis, phase):
        b, n = self.body, len(t)
        c, rot = pelvis["centre"], pelvis["rot"]
        lean = np.radians(TRUNK_LEAN_DEG)
        mid = c + np.array([np.sin(lean), 0.0, np.cos(lean)]) * b.trunk_m
        half = b.shoulder_separation_m / 2
        for side in SIDES:
            lat = _LAT[side]
            ish, iel, iwr, ipi, iin, ith = _IDX[side][:6]
            off = np.zeros((n, 3))
            off[:, 1] = lat * half
            sh = mid + rot_z(off, -0.7 * rot)  # shoulders counter-rotate against the pelvis
            if phase is None:
                alpha = np.radians(2.0) * np.sin(2 * np.pi * t / 5.0 + lat)
            else:  # arm forward while the opposite leg is forward
                alpha = -np.radians(15.0) * self.k * np.cos(2 * np.pi * phase[side])
            beta = np.radians(12.0) + 0.6 * np.maximum(alpha, 0.0)
            abd = lat * np.sin(np.radians(8.0))
            d1 = np.stack([np.sin(alpha), np.full(n, abd), -np.cos(alpha)], 1)
            d2 = np.stack([np.sin(alpha + beta), np.full(n, abd), -np.cos(alpha + beta)], 1)
            el = sh + b.upper_arm_m * d1
            wr = el + b.forearm_m * d2
            fwd = np.stack([np.cos(alpha + beta), np.zeros(n), np.sin(alpha + beta)], 1)
            out[:, ish], out[:, iel], out[:, iwr] = sh, el, wr
            out[:, ipi] = wr + 0.6 * b.hand_m * d2 - 0.02 * fwd + lat * np.array([0, 0.01, 0])
            out[:, iin] = wr + 0.75 * b.hand_m * d2 + 0.015 * fwd
            out[:, ith] = wr + 0.35 * b.hand_m * d2 + 0.035 * fwd - lat * np.array([0, 0.01, 0])
        head = mid + np.array([0.03, 0.0, b.head_centre_above_shoulder_m])
        out[:, 0:11] = head[:, None, :] + _FACE[None] * (b.height_m / 1.75)
