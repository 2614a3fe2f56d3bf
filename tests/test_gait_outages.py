"""Which cycles a camera outage touched (rig.gait.outages): pure, from heel strikes and the
accepted strides."""
from __future__ import annotations

import numpy as np

from rig.gait.cycles import Stride
from rig.gait.outages import describe, outage_cycles


def test_cycles_overlapping_a_missing_span_are_named_used_or_excluded():
    hs = {"left": np.array([0.0, 1.0, 2.0, 3.0, 4.0]), "right": np.array([0.5, 1.5, 2.5, 3.5])}
    strides = {"left": [Stride("left", 0.0, 0.6, 1.0), Stride("left", 2.0, 2.6, 3.0)],
               "right": [Stride("right", 1.5, 2.1, 2.5)]}
    # indices 120..179 at 60 fps: 2.0 s to 2.983 s
    [entry] = outage_cycles({"rear": [(120, 180)], "left": []}, 60.0, hs, strides)
    assert (entry["view"], entry["first_index"], entry["end_index"], entry["frames"]) == ("rear", 120, 180, 60)
    assert [(c["side"], c["cycle"], c["used"]) for c in entry["cycles"]] == [
        ("left", 2, False), ("left", 3, True), ("right", 2, True), ("right", 3, False)]
    assert describe(entry) == ("rear view: no frame stored for trigger indices 120–179 (2.00–2.98 s): left foot "
                               "cycle 2 excluded, cycle 3 computed without the rear view; right foot cycle 3 "
                               "excluded, cycle 2 computed without the rear view")


def test_no_outage_no_entry_and_a_span_between_cycles_names_none():
    hs = {"left": np.array([0.0, 1.0]), "right": np.array([])}
    assert outage_cycles({}, 60.0, hs, {}) == []
    [entry] = outage_cycles({"front": [(600, 660)]}, 60.0, hs, {})
    assert entry["cycles"] == [] and describe(entry).endswith(": no gait cycle overlaps it")
