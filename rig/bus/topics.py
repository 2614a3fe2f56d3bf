"""The rig's MQTT topic tree: the single source of truth for every topic, its QoS,
whether it is retained, and why. ``docs/mqtt.md`` is generated from TOPICS
(``gaitrig docs mqtt``) and a test keeps it in step.

All topics live under ``gaitrig/<rig_id>/``. Times in payloads are Unix seconds on the
host's synchronised realtime clock (chrony/PTP on the rig's LAN).
"""
from __future__ import annotations

from dataclasses import dataclass

ROOT = "gaitrig"


@dataclass(frozen=True)
class Topic:
    pattern: str  # relative to gaitrig/<rig_id>/, placeholders in braces
    qos: int
    retained: bool
    publisher: str
    subscribers: str
    payload: str  # name of the payload schema in rig.bus.payloads
    why: str

    def path(self, rig_id: str, **fields: object) -> str:
        return f"{ROOT}/{rig_id}/" + self.pattern.format(**fields)

    def filter(self, rig_id: str) -> str:
        """Subscription filter: every ``{placeholder}`` becomes ``+``."""
        parts = ["+" if p.startswith("{") else p for p in self.pattern.split("/")]
        return f"{ROOT}/{rig_id}/" + "/".join(parts)

    def fields(self, rig_id: str, topic: str) -> dict[str, str]:
        """The placeholder values in a concrete topic, e.g. {'view': 'left'}."""
        prefix = f"{ROOT}/{rig_id}/"
        rel = topic[len(prefix):].split("/") if topic.startswith(prefix) else []
        pat = self.pattern.split("/")
        if len(rel) != len(pat):
            raise ValueError(f"topic {topic!r} does not match {self.pattern!r}")
        return {p[1:-1]: r for p, r in zip(pat, rel) if p.startswith("{")}


TREADMILL_STATE = Topic(
    "treadmill/state", 1, True, "bridge", "coordinator, diag",
    "BeltState", "Latest belt state; retained so a coordinator that restarts knows at once whether "
    "the belt runs. QoS 1: a lost stop would leave a session open.")
TREADMILL_TRIGGER = Topic(
    "treadmill/trigger", 1, True, "bridge", "coordinator, nodes",
    "TriggerState", "Trigger-train state with the first pulse in host time; nodes index frames "
    "from it. Retained: a node that reconnects mid-session still knows the train.")
TREADMILL_EVENT = Topic(
    "treadmill/event", 1, False, "bridge", "coordinator, diag",
    "TreadmillEvent", "Emergency stop, controller faults, link lost/restored, controller silent. "
    "QoS 1 since each is acted on once; not retained: an event is a moment, not a state.")
TREADMILL_CMD = Topic(
    "treadmill/cmd", 1, False, "coordinator", "bridge",
    "TreadmillCommand", "Arm/disarm/ping/status for the controller. QoS 1; the bridge "
    "de-duplicates by command id so a redelivered arm is not sent twice.")
TREADMILL_CMD_REPLY = Topic(
    "treadmill/cmd/reply", 1, False, "bridge", "coordinator",
    "CommandReply", "The controller's acknowledgement or error for one command id.")
BRIDGE_LINK = Topic(
    "treadmill/link", 1, True, "bridge", "coordinator, diag",
    "LinkState", "Serial link and counters (rejected frames, reconnects, clock drift). Retained.")
SESSION_STATE = Topic(
    "session/state", 1, True, "coordinator", "nodes, tablet, diag",
    "SessionState", "idle / recording / closing with the session id. Retained so a node that "
    "boots mid-session joins it.")
SESSION_CMD = Topic(
    "session/cmd", 1, False, "tablet, technician", "coordinator",
    "SessionCommand", "Manual start/stop of a session.")
SESSION_SUMMARY = Topic(
    "session/summary", 1, True, "coordinator", "tablet, diag",
    "SessionSummary", "The last closed session's summary, retained for the tablet.")
SESSION_ERASED = Topic(
    "session/erased", 1, True, "coordinator", "nodes",
    "ErasedSessions", "Every session erased with its patient (ids only). Retained, so a node that was "
    "off when the patient was erased deletes those sessions' review video when it reconnects. The "
    "coordinator publishes it at start and whenever the clinic file's erased list grows.")
NODE_KEYPOINTS = Topic(
    "node/{view}/kp", 1, False, "node", "coordinator",
    "KeypointFrame (binary)", "One frame's 33 landmarks, ~250 bytes. QoS 1: every frame must "
    "arrive; duplicates are dropped by (session, view, trigger index).")
NODE_END = Topic(
    "node/{view}/end", 1, False, "node", "coordinator",
    "NodeEnd", "End-of-session count from a node: frames captured and published, against pulses.")
NODE_INFO = Topic(
    "node/{view}/info", 1, True, "node", "coordinator, diag",
    "NodeInfo", "The camera's geometry and which way the patient faces in it; retained, so the "
    "coordinator can export keypoint files for any session.")
NODE_PREVIEW = Topic(
    "node/{view}/preview", 0, True, "node", "tablet, coordinator",
    "KeypointFrame (binary)", "A live view for the tablet: the latest landmarks a few times a second "
    "whatever the trigger rate (never the image: video does not leave the node). Retained, QoS 0: "
    "only the newest matters.")
PRESENCE = Topic(
    "presence/{daemon}", 1, True, "every daemon", "diag, coordinator",
    "Presence", "Birth on connect, death as last will: presence is always true. A sequence "
    "number (Sparkplug-style) tells a stale death from a new one.")
DIAG_HEALTH = Topic(
    "diag/{daemon}/health", 0, True, "every daemon", "diag, coordinator",
    "DiagHealth", "Figures every 5 s (units in the names) and the problems active now; the coordinator "
    "keeps each camera node's drops of the session so far for the tablet's live page. Retained, so "
    "`gaitrig diag status` sees every daemon at once, and a dead daemon's last figures stay for the "
    "post-mortem (presence says whether it is up). QoS 0: the next report replaces a lost one.")
DIAG_EVENT = Topic(
    "diag/{daemon}/event", 1, False, "every daemon", "diag",
    "DiagEvent", "A problem raised or cleared (camera lost, backlog, disk nearly full, controller "
    "silent, spool filling...) and technicians' actions (setting changed, restart). QoS 1, not "
    "retained: an event is a moment; the current problems are in health.")
DIAG_CMD = Topic(
    "diag/{daemon}/cmd", 1, False, "technician", "that daemon",
    "DiagCommand", "A request (ping, health, config, set, selftest, restart, log_level) with MQTT v5 "
    "ResponseTopic and CorrelationData. Never retained: a retained restart would loop. Requesters "
    "should set a message expiry so a command is not carried out long after it was sent.")
DIAG_CMD_TECH = Topic(
    "diag/{daemon}/cmd/tech", 1, False, "technician", "that daemon",
    "DiagCommand", "Technician-only commands (a still frame from the camera, which may show the "
    "patient). Its own topic because the broker's ACL authorises by topic: only the technician "
    "role may publish here. Takes every command of `cmd` too.")
DIAG_REPLY = Topic(
    "diag/{daemon}/reply", 1, False, "that daemon", "diag",
    "DiagReply", "Replies, carrying the request's CorrelationData. They go to the request's "
    "ResponseTopic, which must lie under `diag/<daemon>/reply/` on a locked-down broker (a daemon "
    "may write nothing else); without one, here.")

TOPICS: tuple[Topic, ...] = (
    TREADMILL_STATE, TREADMILL_TRIGGER, TREADMILL_EVENT, TREADMILL_CMD, TREADMILL_CMD_REPLY,
    BRIDGE_LINK, SESSION_STATE, SESSION_CMD, SESSION_SUMMARY, SESSION_ERASED,
    NODE_KEYPOINTS, NODE_END, NODE_INFO, NODE_PREVIEW, PRESENCE,
    DIAG_HEALTH, DIAG_EVENT, DIAG_CMD, DIAG_CMD_TECH, DIAG_REPLY,
)
DIAG_TOPICS: tuple[Topic, ...] = (DIAG_HEALTH, DIAG_EVENT, DIAG_CMD, DIAG_CMD_TECH, DIAG_REPLY)
