"""When a session starts and stops — pure logic, no I/O, driven by events and time.

A session starts by itself once the belt has run at walking speed for ``start_after_s``
(or by a manual start) and stops when the belt stops, the emergency stop fires, or by a
manual stop. Stopping goes through *closing*: the trigger train is disarmed, its final
pulse count is awaited, then every node's end-of-session count, or a timeout.
A session is complete only if every view sent a frame for every pulse, no second frame
contradicted one already stored, and no frame was lost to a failed database write.
The daemon feeds events in and carries out the returned actions. A session a previous
run of the daemon left open is taken up again with ``resume`` (from what the database
kept), so a restart neither splits a walk nor leaves it open.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from rig.config import SessionSettings


class Phase(str, Enum):
    IDLE = "idle"
    RECORDING = "recording"
    CLOSING = "closing"


# -- actions the daemon carries out ---------------------------------------------------------
@dataclass(frozen=True)
class OpenSession:
    reason: str


@dataclass(frozen=True)
class Arm:
    rate_hz: float


@dataclass(frozen=True)
class Disarm:
    pass


@dataclass(frozen=True)
class BeginClosing:
    reason: str
    pulses_sent: int


@dataclass(frozen=True)
class FinishSession:
    complete: bool
    missing_views: tuple[str, ...]
    problem: str | None = None  # why it is incomplete, for the log and the summary
    final_pulses: int | None = None  # the train's count corrected from the frames (a train lost to a reset)


Action = OpenSession | Arm | Disarm | BeginClosing | FinishSession
MANUAL_START = "manual start"  # the start reason of a session started by command


@dataclass
class SessionMachine:
    """Feed it belt/trigger/node events; it answers with the actions to take."""

    settings: SessionSettings
    phase: Phase = Phase.IDLE
    manual: bool = False
    stop_reason: str | None = None
    _walking_since: float | None = None
    _needs_belt_rest: bool = False  # after an auto stop, the belt must stop before the next start
    _belt_moving: bool = False  # at walking speed, whether or not the e-stop is engaged
    _stopped_at: float | None = None
    _closing_since: float | None = None
    _pulses_sent: int | None = None
    _ends: dict[str, int] = field(default_factory=dict)
    _received: dict[str, int] = field(default_factory=dict)
    conflicts: Counter[str] = field(default_factory=Counter)  # per view, this session
    lost: Counter[str] = field(default_factory=Counter)  # per view: received, then lost to the database
    _progress_at: float = 0.0  # last frame received while closing
    _last_index: int = -1  # the highest trigger index stored this session
    _pulses_bound: bool = False  # the final count is an upper bound (a train lost to a reset)
    _lost_train_pulses: int | None = None  # that bound, reported while still recording

    # -- inputs -------------------------------------------------------------------------------
    def belt(self, now: float, running: bool, speed_m_s: float, estop: bool) -> list[Action]:
        self._belt_moving = running and speed_m_s >= self.settings.walking_speed_min_m_s
        walking = self._belt_moving and not estop
        if not walking:
            self._walking_since = None
            self._needs_belt_rest = False
        elif self._walking_since is None:
            self._walking_since = now
        if self.phase is Phase.RECORDING:
            if estop:
                return self._stop(now, "emergency stop")
            if not walking and not self.manual:
                return self._stop(now, "belt stopped")
        return self.tick(now)

    def command(self, now: float, action: str) -> list[Action]:
        if action == "start" and self.phase is Phase.IDLE:
            return self._start(MANUAL_START, manual=True)
        if action == "stop" and self.phase is Phase.RECORDING:
            return self._stop(now, "manual stop")
        return []

    def trigger(self, now: float, armed: bool, pulses_sent: int, lost: bool = False) -> list[Action]:
        """A trigger-train report; once disarmed during closing its count is final. A train
        lost to a controller reset ends with an upper bound of its count, which the highest
        frame index stored corrects at the finish; it may come while still recording (the
        belt's stop follows), and is kept until then."""
        if lost and not armed and self.phase is not Phase.IDLE and self._pulses_sent is None:
            self._pulses_bound = True
            if self.phase is Phase.RECORDING:
                self._lost_train_pulses = pulses_sent
                return []
        if self.phase is Phase.CLOSING and not armed and self._pulses_sent is None:
            self._pulses_sent = pulses_sent
            self._closing_since = now
            return [BeginClosing(self.stop_reason or "stopped", pulses_sent)] + self._maybe_finish(now)
        return []

    def frame_received(self, view: str, now: float | None = None, index: int = -1) -> None:
        """A frame arrived; while frames keep arriving after the stop (a node finishing its
        backlog), the end timeout counts from the last one: only silence is waited out."""
        self._received[view] = self._received.get(view, 0) + 1
        self._last_index = max(self._last_index, index)
        if now is not None and self.phase is Phase.CLOSING:
            self._progress_at = now

    def frame_conflict(self, view: str) -> None:
        """A second, different frame for an index already stored (the first was kept)."""
        self.conflicts[view] += 1

    def frames_lost(self, view: str, n: int) -> None:
        """Frames received, then lost when their database transaction failed: they will not
        come again, so they count towards the view's end count, but not as received."""
        self._received[view] = self._received.get(view, 0) - n
        self.lost[view] += n

    def node_end(self, now: float, view: str, frames: int) -> list[Action]:
        self._ends[view] = frames
        return self._maybe_finish(now) if self.phase is Phase.CLOSING else []

    def tick(self, now: float) -> list[Action]:
        if (self.phase is Phase.IDLE and self._walking_since is not None and not self._needs_belt_rest
                and now - self._walking_since >= self.settings.start_after_s):
            return self._start("belt running", manual=False)
        if self.phase is Phase.CLOSING:
            return self._maybe_finish(now)
        return []

    def resume(self, now: float, phase: Phase, *, manual: bool, stop_reason: str | None, train_started: bool,
               pulses_sent: int | None, ends: dict[str, int], received: dict[str, int],
               conflicts: dict[str, int] | None = None, lost: dict[str, int] | None = None,
               last_index: int = -1) -> list[Action]:
        """Take up an open session where a previous run left it. Recording goes on (the belt
        events that follow stop it as usual); closing waits for what is still missing, with
        its timeouts counted from now. Returns what to send again: the arm if the train never
        reported armed, the disarm if its final count never came."""
        self.phase, self.manual, self.stop_reason = phase, manual, stop_reason
        self._pulses_sent, self._ends, self._received = pulses_sent, dict(ends), dict(received)
        self.conflicts, self.lost = Counter(conflicts or {}), Counter(lost or {})  # the database kept them
        self._last_index = last_index
        closing = phase is Phase.CLOSING
        self._stopped_at = now if closing else None
        self._closing_since = now if closing and pulses_sent is not None else None
        self._needs_belt_rest = closing and not manual
        if phase is Phase.RECORDING:
            return [] if train_started else [Arm(self.settings.fps)]
        return [Disarm()] if pulses_sent is None else self._maybe_finish(now)

    @property
    def awaiting_train_end(self) -> bool:
        """Closing, and the controller has not yet confirmed the train stopped."""
        return self.phase is Phase.CLOSING and self._pulses_sent is None

    # -- transitions ----------------------------------------------------------------------------
    def _start(self, reason: str, manual: bool) -> list[Action]:
        self.phase, self.manual, self.stop_reason = Phase.RECORDING, manual, None
        self._pulses_sent, self._closing_since, self._ends, self._received = None, None, {}, {}
        self.conflicts, self.lost = Counter(), Counter()
        self._last_index, self._pulses_bound, self._lost_train_pulses = -1, False, None
        return [OpenSession(reason), Arm(self.settings.fps)]

    def _stop(self, now: float, reason: str) -> list[Action]:
        self.phase, self.stop_reason, self._stopped_at = Phase.CLOSING, reason, now
        self._needs_belt_rest = not self.manual and self._belt_moving  # a belt already at rest has rested
        if self._lost_train_pulses is not None:  # the train already died with a controller reset
            return [Disarm()] + self.trigger(now, False, self._lost_train_pulses, lost=True)
        return [Disarm()]

    def _maybe_finish(self, now: float) -> list[Action]:
        """Finish when every view reported its end and all its frames are in, or on timeout."""
        if self._pulses_sent is None:
            if now - (self._stopped_at or now) < self.settings.end_timeout_s:
                return []
            self.phase = Phase.IDLE  # the controller never confirmed the disarm: report, don't wait
            return [FinishSession(False, tuple(self.settings.views), "no final pulse count from the controller")]
        views = self.settings.views
        done = [v for v in views if v in self._ends and self._received.get(v, 0) + self.lost[v] >= self._ends[v]]
        timed_out = now - max(self._closing_since or now, self._progress_at) >= self.settings.end_timeout_s
        if len(done) < len(views) and not timed_out:
            return []
        missing = tuple(v for v in views if v not in done)
        final = None
        if self._pulses_bound:  # the cameras saw the lost train's last pulse
            final = self._pulses_sent = min(self._pulses_sent, self._last_index + 1)
        problem = self._problem(missing)
        self.phase = Phase.IDLE
        return [FinishSession(problem is None, missing, problem, final)]

    def _problem(self, missing: tuple[str, ...]) -> str | None:
        """Why the closing session is incomplete, every reason that applies; None if it is not."""
        short = [v for v in self.settings.views if self._received.get(v, 0) < (self._pulses_sent or 0)]
        problems = []
        if missing:
            problems.append(f"no end-of-session count from {', '.join(missing)}")
        elif short:
            problems.append(f"fewer frames than pulses from {', '.join(short)}")
        if self.lost:
            problems.append("frames lost to a failed database write (disk full?): "
                            + ", ".join(f"{v} {n}" for v, n in sorted(self.lost.items())))
        if self.conflicts:
            problems.append("conflicting frames for an index already stored (first kept): "
                            + ", ".join(f"{v} {n}" for v, n in sorted(self.conflicts.items())))
        return "; ".join(problems) or None
