"""Erasing a patient everywhere (the right to erasure), for the admin's button and
``gaitrig patients erase``: the same steps and the same account of what went.

1. The clinic file, in one transaction: the patient, their conditions and pending pick go,
   and their sessions join the erased list (:meth:`rig.clinic.records.Records.erase`). From
   then on the pages answer 404 for those sessions.
2. The camera nodes that answer delete those sessions' review video at once (the clip
   server's ``DELETE``); the others are named as pending — the coordinator publishes the
   erased list retained on ``session/erased`` and a node applies it when it is back.
3. The coordinator, which alone writes its database, reads the erased list about once a
   second and deletes every row of those sessions in one transaction; this waits a few
   seconds to say whether it has (it is not running: it does so when it starts).

The audit log gets the counts (sessions, clips, nodes pending) under the bare patient id.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rig.clinic.records import Records
from rig.video.client import ClipClient, NodeOffline, NodeRefused

from .database import DatabaseUnavailable, ReadOnlyDatabase

COORDINATOR_WAIT_S = 3.0  # the coordinator reads the erased list every second
POLL_S = 0.2


@dataclass(frozen=True)
class Erasure:
    patient_id: int
    sessions: list[int]
    clips: dict[str, int]  # view -> sessions whose video that node deleted now
    pending_nodes: dict[str, str]  # view -> why it has not deleted yet (offline, refused)
    recordings_left: list[int]  # sessions the coordinator has not deleted yet

    def lines(self) -> list[str]:
        """What was removed and what is still to go, for the command line and the page."""
        out = [f"erased patient {self.patient_id} and {_sessions(len(self.sessions))}"]
        if self.recordings_left:
            out.append(f"recordings of {_sessions(len(self.recordings_left))} not deleted yet: the coordinator "
                       "deletes them when it runs")
        elif self.sessions:
            out.append("recordings (keypoints, belt, reports) deleted by the coordinator")
        out += [f"camera node {view}: video of {_sessions(n)} deleted" for view, n in sorted(self.clips.items())]
        out += [f"camera node {view}: pending, it deletes the video when it reconnects ({why})"
                for view, why in sorted(self.pending_nodes.items())]
        return out


def _sessions(n: int) -> str:
    return f"{n} session" + ("" if n == 1 else "s")


def erase_patient(records: Records, db: ReadOnlyDatabase, patient_id: int, by: str, token: str | None,
                  timeout_s: float, wait_s: float = COORDINATOR_WAIT_S) -> Erasure | None:
    """Erase the patient and their sessions (steps above); None if there is no such patient."""
    sids = records.erase(patient_id, by)
    if sids is None:
        return None
    clips, pending = {}, {}
    try:
        infos = db.node_infos() if sids else {}
    except DatabaseUnavailable:
        infos = {}
    for view, info in sorted(infos.items()):
        if not info.get("clips_url"):
            continue  # a node that records no video
        node = ClipClient(info["clips_url"], view, timeout_s, token)
        try:
            clips[view] = sum(node.delete(sid) for sid in sids)
        except (NodeOffline, NodeRefused) as e:
            pending[view] = str(e)
    left = _wait_recordings_gone(ReadOnlyDatabase(db.path), sids, wait_s)  # not hiding the erased
    records.store.audit(by, f"erase patient: {_sessions(len(sids))}, video of {sum(clips.values())} deleted now, "
                        f"nodes pending: {', '.join(sorted(pending)) or 'none'}", patient_id)
    return Erasure(patient_id, sids, clips, pending, left)


def _wait_recordings_gone(db: ReadOnlyDatabase, sids: list[int], wait_s: float) -> list[int]:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            left = [s.session.id for s in db.sessions_by_id(sids)] if sids else []
        except DatabaseUnavailable:
            return []  # no recordings at all
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_S)
