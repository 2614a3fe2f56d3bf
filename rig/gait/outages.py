"""Which gait cycles a camera outage touched: a node down (crashed, restarting, its spool
full) or the coordinator's disk full leaves a span of trigger indices with no stored frame
from a view. The report names, for
each such span, every cycle of each foot that overlaps it, and whether the cycle was still
used — then computed from the other views — or excluded, so a clinician knows which strides
the figures rest on. Pure: from the fused heel strikes and the accepted strides.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .cycles import Stride

SIDES = ("left", "right")


def outage_cycles(outages: dict[str, list[tuple[int, int]]], fps: float, heel_strikes: dict[str, np.ndarray],
                  strides: dict[str, list[Stride]]) -> list[dict]:
    """One entry per span [first_index, end_index) of a view's missing frames, in time order.
    Cycle ``n`` of a foot runs from its n-th heel strike to its next (1-based, in the order
    of ``heel_strikes``); it overlaps the span if a missing frame's time (index / fps, seconds
    from the first trigger pulse) lies within it."""
    used = {s: {(st.heel_strike_s, st.next_heel_strike_s) for st in strides.get(s, [])} for s in SIDES}
    out = []
    for view, first, end in sorted(((v, a, b) for v, spans in outages.items() for a, b in spans if b > a),
                                   key=lambda x: (x[1], x[0])):
        t0, t1 = first / fps, (end - 1) / fps
        cycles = []
        for side in SIDES:
            hs = np.sort(np.asarray(heel_strikes.get(side, []), float))
            for n, (a, b) in enumerate(zip(hs[:-1], hs[1:]), start=1):
                if a <= t1 and b >= t0:
                    cycles.append({"side": side, "cycle": n, "heel_strike_s": float(a), "next_heel_strike_s": float(b),
                                   "used": (float(a), float(b)) in used[side]})
        out.append({"view": view, "first_index": int(first), "end_index": int(end), "frames": int(end - first),
                    "t_start_s": t0, "t_end_s": t1, "cycles": cycles})
    return out


def _runs(numbers: Iterable[int]) -> str:
    """3, 4, 5, 8 -> '3–5, 8'."""
    ns, parts = sorted(numbers), []
    for n in ns:
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts)


def _cycles(numbers: list[int]) -> str:
    return ("cycle " if len(numbers) == 1 else "cycles ") + _runs(numbers)


def describe(entry: dict) -> str:
    """One sentence for a clinician: what was missing and what it did to which cycles."""
    head = (f"{entry['view']} view: no frame stored for trigger indices {entry['first_index']}–{entry['end_index'] - 1} "
            f"({entry['t_start_s']:.2f}–{entry['t_end_s']:.2f} s)")
    parts = []
    for side in SIDES:
        cyc = [c for c in entry["cycles"] if c["side"] == side]
        if not cyc:
            continue
        used = [c["cycle"] for c in cyc if c["used"]]
        excluded = [c["cycle"] for c in cyc if not c["used"]]
        bits = []
        if excluded:
            bits.append(f"{_cycles(excluded)} excluded")
        if used:
            bits.append(f"{_cycles(used)} computed without the {entry['view']} view")
        parts.append(f"{side} foot " + ", ".join(bits))
    return head + (": " + "; ".join(parts) if parts else ": no gait cycle overlaps it")
