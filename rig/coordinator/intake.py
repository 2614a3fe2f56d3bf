"""What the coordinator accepts from nodes beyond what the payload schema checks — pure
logic, no I/O. Each check raises a PayloadError whose ``kind`` names the rule, so the
daemon counts the rejection (diagnostics show it per kind) and stores nothing.

The topic is the authority for who sent a message: the broker's ACL lets a node publish
only under its own ``node/<view>/``, while the payload is whatever the sender wrote. A
node may only add to the session being recorded, and only frames for trigger pulses the
train has actually sent: a frame from the future could otherwise take the place of the
real one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rig.bus.payloads import DiagHealth, KeypointFrame, NodeEnd, NodeInfo, PayloadError, TriggerState

INDEX_TOLERANCE_S = 0.5  # clock offset between the bridge's and the coordinator's host, and jitter


@dataclass
class Train:
    """What the coordinator knows of the open session's trigger train, to bound the trigger
    index a frame may carry. The train is armed after the session opens, so the session's
    start is a safe first pulse until the controller reports the real one."""

    session_id: int
    opened_t: float  # session start, coordinator clock (Unix s)
    fps: float  # the rate the session arms the train at
    first_pulse_t: float | None = None
    rate_hz: float | None = None
    final_pulses: int | None = None  # once disarmed: the controller's final count

    def report(self, trig: TriggerState) -> None:
        if trig.armed and trig.first_pulse_t is not None:
            self.first_pulse_t, self.rate_hz = trig.first_pulse_t, trig.rate_hz

    def max_index(self, now: float) -> int:
        """The highest trigger index a genuine frame can carry at ``now``."""
        if self.final_pulses is not None:
            return self.final_pulses - 1
        first = self.opened_t if self.first_pulse_t is None else self.first_pulse_t
        return math.floor((now - first + INDEX_TOLERANCE_S) * (self.rate_hz or self.fps))


def check_frame(view: str, frame: KeypointFrame, views: list[str], open_session: int | None,
                train: Train | None, now: float) -> None:
    """``view`` comes from the topic."""
    if view not in views:
        raise PayloadError("frame_unknown_view", f"frame from view {view!r}, which is not configured")
    if open_session is None or frame.session_id != open_session:
        raise PayloadError("frame_wrong_session", f"frame for session {frame.session_id} from {view}; "
                           f"the session being recorded is {open_session}")
    limit = train.max_index(now) if train is not None else -1
    if frame.index > limit:
        raise PayloadError("frame_index_ahead", f"frame {frame.index} from {view}: the trigger train has "
                           f"sent at most {limit + 1} pulses")


def ends_train(train: Train | None, trig: TriggerState) -> bool:
    """Whether a trigger report may end the session's train. A disarmed report naming no
    train while the session's train is known is a rebooted controller's (counters from zero):
    its count is not the session's."""
    if trig.armed or train is None or train.first_pulse_t is None:
        return True
    return trig.first_pulse_t is not None


def check_end(view: str, end: NodeEnd, views: list[str], open_session: int | None) -> None:
    """``view`` comes from the topic; the payload must agree with it."""
    if end.view != view:
        raise PayloadError("end_view_mismatch", f"end-of-session count on {view}'s topic names view {end.view}")
    if view not in views:
        raise PayloadError("end_unknown_view", f"end-of-session count from view {view!r}, which is not configured")
    if open_session is None or end.session_id != open_session:
        raise PayloadError("end_wrong_session", f"end-of-session count for session {end.session_id} from "
                           f"{view}; the session being recorded is {open_session}")


def check_info(view: str, info: NodeInfo) -> None:
    if info.view != view:
        raise PayloadError("info_view_mismatch", f"camera info on {view}'s topic names view {info.view}")


@dataclass(frozen=True)
class NodeHealth:
    """What the live page shows of a camera node between two frames: its session so far."""

    view: str
    t: float
    session_id: int | None
    frames_out: int | None  # frames published this session
    missed: int | None  # trigger pulses without a frame this session
    dropped: int | None  # frames captured but lost (a full spool) this session


def node_health(daemon: str, health: DiagHealth, views: list[str]) -> NodeHealth | None:
    """A camera node's diagnostics health as the coordinator keeps it; None for another
    daemon, a view this rig does not have, or a node without a trigger train (between
    sessions its counts say nothing, and the last ones of the session stay). Figures that are
    not whole numbers read as unknown rather than being guessed."""
    view = daemon.removeprefix("node-")
    f = health.figures
    if not daemon.startswith("node-") or view not in views or f.get("session_missed_triggers") is None:
        return None

    def count(key: str) -> int | None:
        v = f.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    return NodeHealth(view, health.t, count("session_id"), count("session_frames_out"),
                      count("session_missed_triggers"), count("session_dropped"))
