"""The walker's 3D skeleton on the treadmill frame, vectorised over time.

Treadmill frame (metres): x forward (the way the walker faces), y to the walker's left,
z up; origin on the belt surface under the mean hip-joint midpoint. The belt's top moves
toward -x at the belt speed. Feet are modelled first (exact belt contact in stance, a
smooth swing), the pelvis height follows from the stance legs, knees come from 2-link
inverse kinematics, arms swing opposite to the legs.
"""
from __future__ import annotations

import numpy as np
from scipy.special import betainc

from ._anthro import Body

# Foot pitch (toes up positive) at heel strike and toe-off, in degrees at 1.2 m/s; scaled
# mildly with speed (Perry 2010, Gait Analysis ch. 5-6: ~20 deg dorsiflexed foot at
# initial contact, hindfoot ~-55 deg heel-up at toe-off with the toes flat on the belt).
THETA_HS_DEG, THETA_TO_DEG = 18.0, -55.0
U_FOOT_FLAT = 0.13  # stance fraction at foot flat (~8 % of the cycle)
U_HEEL_OFF = 0.55  # stance fraction at heel off (~34 % of the cycle)
TOE_OUT_DEG = 6.0  # foot progression angle
SWING_BETA = (2.0, 2.2)  # belt-frame heel velocity in swing ~ Beta(2, 2.2): braking into contact (real feet)
MTP_FRACTION = 0.73  # heel to metatarsophalangeal joint, fraction of foot length
TOE_RELAX_SWING = 0.6  # the toes realign with the foot within this fraction of swing
SWING_CLEARANCE_M = 0.07  # extra heel lift, peak at 40 % of swing (toe clearance ~1-2 cm)
# Stance knee flexion target (deg) against stance fraction: the pelvis height follows it
# (Perry: ~5 deg at contact, ~18 deg loading peak, ~5 deg midstance, ~40 deg at toe-off).
KNEE_U = np.array([0.0, 0.2, 0.55, 0.8, 1.0])
KNEE_DEG = np.array([6.0, 17.0, 5.0, 4.0, 30.0])
SOFTMIN_M = 0.004
# Real feet against force plates (docs/validation.md): the heel *landmark* is not the
# contact point. At initial contact it still moves forward relative to the belt (in the
# image it moves back at HEEL_CONTACT_BELT_FRACTION of the belt speed) and joins the belt
# over the heel rocker (HEEL_ROCKER_S); the toe landmark leaves the belt's speed
# TOE_ROLL_S before foot off as the forefoot rolls over the toes, and its image velocity
# crosses zero at foot off (real toes decelerate with the heel at contact, so the toe
# landmark lands the same way). The skeleton's chain (ankle, knee) keeps the contact point.
HEEL_CONTACT_BELT_FRACTION = 0.63
HEEL_ROCKER_S = 0.08
TOE_ROLL_S = 0.05
TOE_LIFT_HOLD_S = 0.03
TRUNK_LEAN_DEG = 4.0
PELVIS_ROT_DEG = 4.0
PELVIS_SWAY_M = 0.02

LANDMARK_SIDE_PAIRS = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(k, k + 1) for k in range(11, 33, 2)]
SWAP_PERMUTATION = np.arange(33)
for _a, _b in LANDMARK_SIDE_PAIRS:
    SWAP_PERMUTATION[_a], SWAP_PERMUTATION[_b] = _b, _a
LEFT_LANDMARKS = np.array([1, 2, 3, 7, 9] + list(range(11, 33, 2)))
RIGHT_LANDMARKS = np.array([4, 5, 6, 8, 10] + list(range(12, 33, 2)))

# face points relative to the head centre (between the ears), metres for H = 1.75 m,
# (x forward, y left, z up): nose, L eye inner/eye/outer, R eye inner/eye/outer, L/R ear,
# mouth L/R
_FACE = np.array([
    [0.105, 0.0, -0.01],
    [0.085, 0.018, 0.015], [0.085, 0.032, 0.015], [0.08, 0.048, 0.015],
    [0.085, -0.018, 0.015], [0.085, -0.032, 0.015], [0.08, -0.048, 0.015],
    [0.0, 0.075, 0.0], [0.0, -0.075, 0.0],
    [0.09, 0.025, -0.045], [0.09, -0.025, -0.045],
])


def smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.minimum(np.maximum(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def cos_interp(u: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """C1 interpolation through ``values`` with zero slope at each knot."""
    u = np.clip(u, knots[0], knots[-1])
    k = np.clip(np.searchsorted(knots, u, side="right") - 1, 0, len(knots) - 2)
    f = (u - knots[k]) / (knots[k + 1] - knots[k])
    w = 0.5 - 0.5 * np.cos(np.pi * f)
    return values[k] + (values[k + 1] - values[k]) * w


def speed_scale(v: float) -> float:
    return float(np.clip(v / 1.2, 0.6, 1.3))


class FootModel:
    """Heel, ankle and toe of one foot over time, plus phase variables.

    Stance (heel strike to toe-off; Perry's rockers): the foot rotates toes-down about the
    heel until foot flat, stays flat, then rotates heel-up about the toe tip until toe-off.
    The contact point (heel, then whole foot, then toe) is fixed to the belt, so it moves
    at exactly -belt speed. Swing: the heel follows a C1 curve from its toe-off state to
    the next landing; its belt-frame forward velocity has a Beta(2, 1.8)-shaped profile that
    peaks at ~55 % of swing and decays to zero at contact (terminal-swing deceleration), so
    on the treadmill the heel is farthest forward ~1-3 % of the cycle before heel strike,
    then moves back to meet the belt; foot pitch is a cubic Hermite that matches the
    angular velocity at toe-off and is zero at contact.
    """

    def __init__(self, body: Body, belt_speed_m_s: float, side: str,
                 contact_pitch_deg: float = THETA_HS_DEG) -> None:
        self.b = body
        self.v = belt_speed_m_s
        self.lat = 1.0 if side == "left" else -1.0
        k = speed_scale(belt_speed_m_s)
        self.theta_hs = np.radians(contact_pitch_deg) * (0.5 + 0.5 * k)
        self.theta_to = np.radians(THETA_TO_DEG) * (0.6 + 0.4 * k)
        psi = np.radians(TOE_OUT_DEG)
        self.axis = np.array([np.cos(psi), self.lat * np.sin(psi), 0.0])

    def _frame(self, theta):
        """Forward and up unit vectors of the pitched foot, (n, 3) each."""
        c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
        fwd = c * self.axis + s * np.array([0.0, 0.0, 1.0])
        up = -s * self.axis + c * np.array([0.0, 0.0, 1.0])
        return fwd, up

    def evaluate(self, t, hs, to, land_x, land_y, y0):
        """Positions on the treadmill frame for times ``t`` within stride ``i`` (arrays).

        ``hs``: this stride's and the next heel strike; ``to``: this toe-off; ``land_*``:
        landing heel x (treadmill frame) and y jitter of this stride and the next.
        Returns heel, ankle, toe (n, 3), stance flag, stance fraction u, swing fraction s.
        """
        (hs0, hs1), (lx0, lx1), (ly0, ly1) = hs, land_x, land_y
        v, lf = self.v, self.b.foot_length_m
        lh, lt = MTP_FRACTION * lf, (1 - MTP_FRACTION) * lf  # heel-MTP, MTP-toe tip
        stance_s = to - hs0
        stance = t < to
        u = (t - hs0) / stance_s
        s = np.minimum(np.maximum((t - to) / (hs1 - to), 0.0), 1.0)
        w = hs1 - to
        # belt-frame landing heels, fixed while on the belt
        bx0, bx1 = lx0 + v * hs0, lx1 + v * hs1
        by0, by1 = y0 + ly0, y0 + ly1
        # --- hindfoot pitch: stance rockers, then a Hermite swing matching omega at TO
        th_st = np.where(u < U_FOOT_FLAT, self.theta_hs * (1 - smoothstep(u / U_FOOT_FLAT)), 0.0)
        r = np.minimum(np.maximum((u - U_HEEL_OFF) / (1 - U_HEEL_OFF), 0.0), 1.0)
        th_st = np.where(u >= U_HEEL_OFF, self.theta_to * r * r, th_st)
        omega0 = 2 * self.theta_to / ((1 - U_HEEL_OFF) * stance_s)
        h00, h01, h0 = 1 - s * s * (3 - 2 * s), s * s * (3 - 2 * s), s * (1 - s) ** 2
        th_sw = self.theta_to * h00 + omega0 * w * h0 + self.theta_hs * h01
        theta = np.where(stance, th_st, th_sw)
        # toe segment: flat on the belt during heel rise (MTP extends), relaxes in early swing
        relax = 1 - smoothstep(s / TOE_RELAX_SWING)
        mtp_sw = (-self.theta_to - omega0 * w * s) * relax
        mtp = np.where(stance, np.where(u >= U_HEEL_OFF, -th_st, 0.0), mtp_sw)
        fwd, up = self._frame(theta)
        toe_fwd, _ = self._frame(theta + mtp)
        # --- heel in stance: pivot at the heel, then at the MTP joint
        base = np.stack([bx0, by0, np.zeros_like(bx0)], axis=1)
        heel_st = np.where((u >= U_HEEL_OFF)[:, None], base + lh * self.axis - lh * fwd, base)
        # --- heel in swing: from its toe-off state to the next landing (C1)
        c0, s0 = np.cos(self.theta_to), np.sin(self.theta_to)
        ax, ay = self.axis[0], self.axis[1]
        hx0, hy0, hz0 = bx0 + lh * ax * (1 - c0), by0 + lh * ay * (1 - c0), -lh * s0
        vx0, vy0, vz0 = lh * omega0 * s0 * ax, lh * omega0 * s0 * ay, -lh * omega0 * c0
        p_fwd = betainc(SWING_BETA[0], SWING_BETA[1], s)  # CDF of the velocity profile
        lift = SWING_CLEARANCE_M * (self.b.height_m / 1.75) * s * s * (1 - s) ** 3 / 0.03456
        heel = np.empty((len(t), 3))
        heel[:, 0] = hx0 + (bx1 - hx0) * p_fwd + vx0 * w * h0
        heel[:, 1] = hy0 + (by1 - hy0) * smoothstep(s) + vy0 * w * h0
        heel[:, 2] = hz0 * h00 + vz0 * w * h0 + lift
        heel = np.where(stance[:, None], heel_st, heel)
        heel[:, 0] -= v * t  # belt frame -> treadmill frame
        toe = heel + lh * fwd + lt * toe_fwd
        ankle = heel + self.b.ankle_forward_m * fwd + self.b.ankle_height_m * up
        heel_lm, toe_lm = heel.copy(), toe.copy()
        landing = self._heel_offset(t - hs0, stance, s, w)  # the whole foot lands this way
        heel_lm[:, 0] += landing
        toe_lm[:, 0] += landing + self._toe_offset(to - t, stance, s)
        return heel_lm, ankle, toe_lm, stance, u, s

    def _heel_offset(self, tau, stance, s, w):
        """Forward offset (m) of the heel landmark from the heel contact point: grows from 0
        at contact with velocity (1 - HEEL_CONTACT_BELT_FRACTION) belt speed to ``D`` over
        the heel rocker, stays through stance, and returns to 0 in swing arriving with that
        velocity (C1 everywhere)."""
        dv = (1.0 - HEEL_CONTACT_BELT_FRACTION) * self.v
        d = dv * HEEL_ROCKER_S / 2.0
        r = np.minimum(np.maximum(tau / HEEL_ROCKER_S, 0.0), 1.0)
        st = d * (1.0 - (1.0 - r) ** 2)
        sw = d * (1.0 - smoothstep(s)) + dv * w * s * s * (s - 1.0)
        return np.where(stance, st, sw)

    def _toe_offset(self, tau, stance, s):
        """Forward offset (m) of the toe landmark from the toe contact: 0 until TOE_ROLL_S
        before foot off, then grows so that the landmark's velocity relative to the belt
        reaches the belt speed at foot off (image velocity 0). After foot off the offset
        keeps that velocity for TOE_LIFT_HOLD_S and eases it to 0 over as long again (the
        landmark's image velocity keeps rising through 0 as the foot lifts), then fades in
        early swing."""
        v, h = self.v, TOE_LIFT_HOLD_S
        q = v * TOE_ROLL_S / 2.0
        r = np.minimum(np.maximum(1.0 - tau / TOE_ROLL_S, 0.0), 1.0)
        st = q * r * r
        sigma = np.maximum(-tau, 0.0)
        e = np.minimum(np.maximum(sigma - h, 0.0), h)
        lift = q + v * np.minimum(sigma, h) + v * (e - e * e / (2.0 * h))
        sw = lift * (1.0 - smoothstep(s / TOE_RELAX_SWING))
        return np.where(stance, st, sw)


def two_link_ik(hip, ankle, l1, l2, pole):
    """Knee position for a hip-knee-ankle chain bending toward ``pole`` (unit vector).

    If the ankle is out of reach the knee is put on the straight line (leg straight).
    """
    d = ankle - hip
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    e = d / dist
    dc = np.clip(dist, abs(l1 - l2) + 1e-9, (l1 + l2) * (1 - 1e-9))
    a = (l1 * l1 - l2 * l2 + dc * dc) / (2 * dc)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    n = pole - np.sum(pole * e, axis=-1, keepdims=True) * e
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return hip + a * e + h * n


def leg_reach(l1, l2, knee_deg):
    """Hip-ankle distance for a knee flexion angle (deg)."""
    return np.sqrt(l1 * l1 + l2 * l2 + 2 * l1 * l2 * np.cos(np.radians(knee_deg)))


def rot_z(points, ang):
    """Rotate (n, 3) vectors about z by ``ang`` (n,) radians."""
    c, s = np.cos(ang), np.sin(ang)
    out = points.copy()
    out[..., 0] = c * points[..., 0] - s * points[..., 1]
    out[..., 1] = s * points[..., 0] + c * points[..., 1]
    return out
