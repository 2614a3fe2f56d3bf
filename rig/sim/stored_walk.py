"""A simulated walk stored as the coordinator stores a real one, for tests and benchmarks.

Why: the tablet pages, the comparison and the benchmarks need sessions in a real coordinator
database, written by the real storage and analysed by the real analysis — the same rows a live
session leaves (node info, every frame as a node encodes it, each node's end, the belt profile,
the train, the close) — without running brokers and nodes for minutes.
"""
from __future__ import annotations

import numpy as np

from rig.bus.payloads import KeypointFrame, NodeInfo, encode_keypoints
from rig.coordinator.analysis import analyze_session
from rig.coordinator.storage import Storage
from rig.sim.walker import SimulatedWalker, WalkerParams

VIEWS = ("left", "right", "rear", "front")
FIRST_PULSE_DELAY_S = 0.5  # the trigger train starts this long after the session opens
WALKING_MIN_M_S = 0.3  # the analysis's walking threshold, as the coordinator's default config


def record_walk(storage: Storage, params: WalkerParams, seed: int, started_t: float, walk_s: float,
                fps: float = 60.0, views: tuple[str, ...] | list[str] = VIEWS,
                walking_min_m_s: float = WALKING_MIN_M_S) -> int:
    """One closed, analysed session of ``walk_s`` seconds; returns its id. Frame i of every
    view is stamped first pulse + i / fps, a belt sample is stored each second, and the session
    closes half a second after the last frame."""
    walker = SimulatedWalker(params, fps=fps, seed=seed)
    views = list(views)
    sid = storage.open_session("belt at walking speed", started_t, fps, views)
    first_pulse = started_t + FIRST_PULSE_DELAY_S
    storage.set_train(sid, first_pulse, None)
    n = walker.n_frames(walk_s)
    for view, lm in walker.render(np.arange(n), views).items():
        h = walker.header(view)
        storage.set_node_info(view, NodeInfo(view=view, width=h.width, height=h.height, facing=h.facing,
                                             camera="simulated", model="simulated walker",
                                             simulated=True).model_dump_json())
        for i in range(n):
            frame = KeypointFrame(sid, i, first_pulse + i / fps, lm[i], simulated=True)
            storage.add_frame(sid, view, i, encode_keypoints(frame))
        storage.node_end(sid, view, n, n, 0, 0, True)
    for k in range(int(walk_s) + 1):
        storage.add_belt_sample(sid, started_t + k, True, params.belt_speed_m_s, 0.0, False)
    storage.set_train(sid, None, n)
    storage.mark_closing(sid, "belt stopped")
    storage.close_session(sid, first_pulse + walk_s + 0.5, True)
    analyze_session(storage, sid, walking_min_m_s)
    storage.commit()
    return sid
