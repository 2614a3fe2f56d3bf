"""The live walk: what the page shows while the belt runs, rebuilt from the coordinator's
database (it commits twice a second) and pushed to the tablet as server-sent events.

Per camera: frames received against the frames the trigger train has asked for so far
(keeping up = no more than a second behind), the frames the node itself says it missed or
lost this session (from its diagnostics health, which the coordinator keeps; a few seconds
old at most), and a stick figure of the newest keypoints.
When the watched session closes and its analysis is stored, the stream says where the
report is and the page goes there by itself.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from rig.bus.payloads import PayloadError, decode_keypoints
from rig.coordinator.storage import SessionRow

from .charts import SIDE_STYLE
from .database import LiveRows

KEEP_UP_SLACK_S = 1.0  # a camera this far behind the trigger train still counts as keeping up
# BlazePose pairs: torso, arms, legs down to heel and toe; odd indices are the subject's left
BONES = ((11, 12), (11, 23), (12, 24), (23, 24), (11, 13), (13, 15), (12, 14), (14, 16),
         (23, 25), (25, 27), (27, 29), (29, 31), (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32))


@dataclass(frozen=True)
class CameraLive:
    view: str
    frames: int
    expected: int | None
    keeping_up: bool | None
    figure: Markup
    drops: int | None = None  # the node's missed triggers + lost frames this session, from its health
    health_age_s: float | None = None  # how old that count is (nodes report every few seconds)


@dataclass(frozen=True)
class LiveView:
    session: SessionRow
    elapsed_s: float
    belt_speed_m_s: float | None
    cameras: list[CameraLive]
    strides: dict[str, int] | None = None  # complete strides per side so far
    strides_view: str | None = None  # the side camera they are counted from


def stick_figure(payload: bytes | None, node_info_json: str | None) -> Markup:
    """The newest keypoints as a small SVG in the camera's frame (left blue, right orange)."""
    try:
        info = json.loads(node_info_json) if node_info_json else {}
        width, height = int(info.get("width", 1456)), int(info.get("height", 1088))
        lm = decode_keypoints(payload).lm if payload else None
    except (PayloadError, ValueError, TypeError):
        lm, width, height = None, 1456, 1088
    parts = [f'<svg class="figure" viewBox="0 0 {width} {height}" role="img" aria-label="newest pose">',
             f'<rect width="{width}" height="{height}" fill="#1b1b1b"/>']
    if lm is None or np.isnan(lm[:, :2]).all():
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" fill="#ccc" font-size="{height / 12:.0f}" '
                     'text-anchor="middle">nobody in view</text>')
    else:
        for a, b in BONES:
            if np.isnan(lm[[a, b], :2]).any():
                continue
            side = "left" if a % 2 and b % 2 else "right" if not (a % 2 or b % 2) else None
            colour = SIDE_STYLE[side][0] if side else "#ccc"
            parts.append(f'<line class="bone {side or "mid"}" x1="{lm[a, 0]:.0f}" y1="{lm[a, 1]:.0f}" '
                         f'x2="{lm[b, 0]:.0f}" y2="{lm[b, 1]:.0f}" stroke="{colour}" stroke-width="{height / 90:.0f}" '
                         'stroke-linecap="round"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def facing_of(rows: LiveRows, view: str) -> str | None:
    try:
        return json.loads(rows.node_info.get(view) or "{}").get("facing")
    except ValueError:
        return None


def live_view(session: SessionRow, rows: LiveRows, now_t: float | None = None,
              strides: dict[str, int] | None = None, strides_view: str | None = None) -> LiveView:
    now_t = time.time() if now_t is None else now_t
    train_s = now_t - session.first_pulse_t if session.first_pulse_t is not None else None
    cameras = []
    for view in sorted(rows.frames):
        expected = int(train_s * session.fps) if train_s is not None and train_s > 0 else None
        keeping_up = None if expected is None else rows.frames[view] >= expected - KEEP_UP_SLACK_S * session.fps
        health = rows.health.get(view)
        drops = (health.missed + health.dropped if health and health.missed is not None
                 and health.dropped is not None else None)
        cameras.append(CameraLive(view, rows.frames[view], expected, keeping_up,
                                  stick_figure(rows.latest.get(view), rows.node_info.get(view)), drops,
                                  max(0.0, now_t - health.t) if health else None))
    return LiveView(session, max(0.0, now_t - session.started_t), rows.belt_speed_m_s, cameras, strides, strides_view)
