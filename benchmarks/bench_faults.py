"""The fault suite's full run: the simulated rig of ``gaitrig demo`` as real processes
(Mosquitto, the controller on a pty, bridge, coordinator, four simulated camera nodes),
one walk per fault injected mid-walk, then a soak — and one table: fault, times injected,
frames produced (pulses x views: what the cameras exposed), frames stored (what the
coordinator's database holds), frames lost, recovery time (restart to the daemon's birth
on MQTT, worst of the injections), daemons crashed.

Faults: Mosquitto, the coordinator and a node SIGKILLed; a technician's restart; a node's
wall clock stepping; the serial device vanishing, line noise, out-of-range fields, the
controller resetting; the coordinator's disk full and a node's spool at its limit (the last
two lose frames by design: the table shows how many, the notes that they were announced).

Run: ``.venv/bin/python benchmarks/bench_faults.py`` (about 45 min: a 30-minute soak at
4 views x 100 fps); ``--soak-min 2`` for a short one, ``--soak-min 0`` for none;
``--soak-only --soak-min 30`` for the soak alone; ``--only serial disk`` for some cases.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import decode_keypoints
from rig.config import ALL_VIEWS
from rig.demo import DAEMONS
from rig.sim.faults import FaultRig, Outcome

WALK_BEFORE_S = 3.0
WALK_AFTER_S = 5.0


@dataclass
class Row:
    fault: str
    injected: int
    produced: int
    stored: int
    recovery_s: float | None
    crashed: int
    note: str = ""

    @property
    def lost(self) -> int:
        return self.produced - self.stored


class Case:
    """A fault run during one walk; ``inject`` returns the recovery times it measured.
    ``setup``/``teardown`` run between walks (a node restarted with a small spool)."""

    def __init__(self, name: str, injected: int, inject: Callable[[FaultRig], list[float]],
                 setup: Callable[[FaultRig], object] | None = None,
                 teardown: Callable[[FaultRig], object] | None = None):
        self.name, self.injected, self.inject = name, injected, inject
        self.setup, self.teardown = setup, teardown


def broker_kills(n: int) -> Case:
    def inject(r: FaultRig) -> list[float]:
        out = []
        for _ in range(n):
            r.sleep(1.0)
            r.kill_broker()
            r.sleep(1.0)
            out.append(r.start_broker())
        return out
    return Case("Mosquitto SIGKILLed, restarted", n, inject)


def kill_restart(name: str, down_s: float = 2.0) -> Case:
    def inject(r: FaultRig) -> list[float]:
        r.kill(name)
        r.sleep(down_s)
        return [r.restart(name)]
    return Case(f"{name} SIGKILLed, restarted", 1, inject)


def restart_command(name: str) -> Case:
    return Case(f"`diag cmd {name} restart`", 1, lambda r: [r.restart_by_command(name)])


def clock_step(view: str, step_s: float) -> Case:
    def inject(r: FaultRig) -> list[float]:
        r.step_clock(view, step_s)
        return []
    return Case(f"node-{view} wall clock +{step_s:.0f} s", 1, inject)


def serial_vanish(n: int, away_s: float = 2.0) -> Case:
    """The controller's USB device unplugged and back: recovery is from its return to the
    bridge's link_restored."""
    def inject(r: FaultRig) -> list[float]:
        out = []
        for _ in range(n):
            t = time.time()
            r.belt(f"vanish {away_s}")
            out.append(r.watch.event_after("link_restored", t + away_s, r))
            r.sleep(1.0)
        return out
    return Case(f"serial device gone {away_s:g} s, back", n, inject)


def serial_noise(n: int, n_bytes: int = 20_000) -> Case:
    def inject(r: FaultRig) -> list[float]:
        for _ in range(n):
            r.belt(f"noise {n_bytes}")
            r.sleep(0.7)
        return []
    return Case(f"serial line noise, {n_bytes // 1000} kB bursts", n, inject)


def serial_impossible(n: int) -> Case:
    def inject(r: FaultRig) -> list[float]:
        for _ in range(n):
            r.belt("impossible")  # 0 Hz HELLO, 65.5 m/s, clock 2^64-1, armed train at 0 Hz
            r.sleep(0.5)
        return []
    return Case("serial out-of-range fields (4 per burst)", n, inject)


def controller_reset() -> Case:
    """The controller reboots mid-walk (new HELLO, counters from zero): the belt and the train
    stop with it and the session closes; recovery is the reset's detection by the bridge."""
    def inject(r: FaultRig) -> list[float]:
        t = time.time()
        r.belt("reset")
        return [r.watch.event_after("controller_reset", t, r)]
    return Case("controller reset mid-walk (session ends)", 1, inject)


def coordinator_disk_full(full_s: float = 2.0) -> Case:
    def inject(r: FaultRig) -> list[float]:
        r.fill_coordinator_disk(room_bytes=1e6)  # below the 16 MB reserve
        r.sleep(full_s)
        r.free_coordinator_disk()
        return []
    return Case(f"coordinator disk full {full_s:g} s (loss by design)", 1, inject)


def node_spool_full(view: str = "front", down_s: float = 4.0, spool_mb: float = 0.02) -> Case:
    def inject(r: FaultRig) -> list[float]:
        r.kill_broker()
        r.sleep(down_s)
        return [r.start_broker()]
    return Case(f"node-{view} spool {spool_mb * 1000:g} kB, broker down {down_s:g} s (loss by design)", 1, inject,
                setup=lambda r: r.reconfigure_node(view, f"spool_max_mb = {spool_mb}\n"),
                teardown=lambda r: r.reconfigure_node(view, ""))


def crashed(rig: FaultRig) -> int:
    return sum(p.poll() is not None for _, p in rig.procs)


def run_case(rig: FaultRig, case: Case) -> Row:
    recovery: list[float] = []

    def fault(r: FaultRig) -> None:
        r.sleep(WALK_BEFORE_S)
        recovery.extend(case.inject(r))
    if case.setup:
        case.setup(rig)
    try:
        o = rig.walk(WALK_AFTER_S, fault)
    finally:
        for view in ALL_VIEWS:
            rig.step_clock(view, 0.0)
        if case.teardown:
            case.teardown(rig)
    return row(case.name, case.injected, o, max(recovery) if recovery else None, crashed(rig))


def row(name: str, injected: int, o: Outcome, recovery_s: float | None, crashed_n: int) -> Row:
    notes = []
    if len(o.session_ids) != 1:
        notes.append(f"split into sessions {o.session_ids}")
    lost = {v: o.missing(v) for v in ALL_VIEWS if o.missing(v)}
    if lost:
        notes.append("missing " + "; ".join(f"{v} {', '.join(f'{a}-{b - 1}' for a, b in s)}" for v, s in lost.items()))
    if o.summary.frames_lost:
        notes.append(f"announced lost to the disk: {o.summary.frames_lost}")
    if o.analysis_error or o.report is None:
        notes.append(f"not analysed: {o.analysis_error}")
    else:
        from rig.gait.outages import describe
        notes += [describe(x) for x in o.report.get("outages", [])]
    return Row(name, injected, o.produced, o.frames_stored, recovery_s, crashed_n, "; ".join(notes))


# -- the soak -----------------------------------------------------------------------------------
class LatencyProbe:
    """Exposure (the frame's pulse time) to delivery over MQTT, for every frame published."""

    def __init__(self, rig: FaultRig):
        self.latency_ms: list[float] = []
        self.client = BusClient(rig.broker.settings("demo"), "bench-latency")
        self.client.on(topics.NODE_KEYPOINTS, self._on_frame)
        self.client.start()

    def _on_frame(self, msg) -> None:
        self.latency_ms.append((time.time() - decode_keypoints(msg.payload).t) * 1000)

    def close(self) -> None:
        self.client.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_mb_per_h(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (s, MB) samples, in MB per hour."""
    ts, ms = [t for t, _ in samples], [m for _, m in samples]
    t_mean, m_mean = statistics.fmean(ts), statistics.fmean(ms)
    var = sum((t - t_mean) ** 2 for t in ts)
    return 0.0 if var == 0 else sum((t - t_mean) * (m - m_mean) for t, m in zip(ts, ms)) / var * 3600


def soak(workdir: Path, minutes: float, fps: float, video: bool = False) -> tuple[Row, dict]:
    """Without ``video`` the nodes keep no review video: on a Pi the camera's encoder makes it,
    here the walker would be drawn and JPEG-encoded on the same two cores (~1 core at 4 x 100 fps)."""
    rig = FaultRig(workdir, fps=fps)
    if not video:
        rig.node_extra = {v: "[video]\nenabled = false\n" for v in ALL_VIEWS}
    rig.up()
    probe = LatencyProbe(rig)
    memory: dict[str, list[tuple[float, float]]] = {d: [] for d in DAEMONS}
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(5.0):
            for name, proc in rig.procs:
                if name in memory and proc.poll() is None and rig.walking:  # not the analysis after
                    memory[name].append((time.monotonic() - t0, rss_mb(proc.pid)))
    sampler = threading.Thread(target=sample, daemon=True)
    name = f"soak {minutes:g} min, {len(ALL_VIEWS)} views x {fps:g} fps"
    try:
        sampler.start()
        first = rig.last_session_id() + 1
        rig.belt(f"start {rig.speed_m_s} 0.5")
        rig.watch.wait_state("recording", rig, session_from=first)
        rig.walking = True
        rig.sleep(minutes * 60)
        rig.belt("stop")
        rig.walking = False
        stopped = time.monotonic()
        stop.set()
        sampler.join()
        warm = {d: [s for s in v if s[0] >= 60] or v for d, v in memory.items()}  # after the first minute
        slopes = {d: slope_mb_per_h(v) for d, v in warm.items() if len(v) > 2}
        lat = sorted(probe.latency_ms)
        figures = {"latency_p50_ms": statistics.median(lat), "latency_p99_ms": lat[int(0.99 * (len(lat) - 1))],
                   "rss_mb_end": {d: round(v[-1][1], 1) for d, v in memory.items() if v},
                   "slope_mb_per_h": {d: round(s, 2) for d, s in slopes.items()}}
        print(f"soak: belt stopped; {len(lat)} frames seen on MQTT; figures so far {figures}", file=sys.stderr,
              flush=True)  # a long close (backlog, analysis) must not hide them
        timeout_s = max(300.0, minutes * 60)  # storing a backlog and analysing a long walk take a while
        try:
            o = rig.outcome(first, rig.next_summary(first, timeout_s))
            figures["close_s"] = time.monotonic() - stopped
            return row(name, 0, o, None, crashed(rig)), figures
        except RuntimeError:  # still closing: say what is stored so far, keep the figures
            pulses = rig.pulses()
            with rig._db() as db:
                stored = db.execute("SELECT count(*) FROM keypoints WHERE session_id = ? AND idx < ?",
                                    (first, pulses)).fetchone()[0]
            return Row(name, 0, pulses * len(ALL_VIEWS), stored, None, crashed(rig),
                       f"not closed {timeout_s:.0f} s after the belt stopped (still storing or analysing); "
                       "stored counts the frames in the database then"), figures
    finally:
        stop.set()
        probe.close()
        rig.down()


# -- output -------------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    head = "| fault | times injected | frames produced | frames stored | frames lost | recovery s | daemons crashed |"
    out = [head, "|" + "---|" * 7]
    for r in rows:
        rec = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        out.append(f"| {r.fault} | {r.injected} | {r.produced} | {r.stored} | {r.lost} | {rec} | {r.crashed} |")
    notes = [f"- {r.fault}: {r.note}" for r in rows if r.note]
    return "\n".join(out + ([""] + notes if notes else []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soak-min", type=float, default=30.0, help="soak length, minutes (0: no soak)")
    ap.add_argument("--soak-fps", type=float, default=100.0)
    ap.add_argument("--soak-video", action="store_true", help="nodes record review video during the soak too")
    ap.add_argument("--broker-kills", type=int, default=5)
    ap.add_argument("--workdir", type=Path, help="keep the rigs' logs and databases here")
    ap.add_argument("--soak-only", action="store_true", help="skip the fault cases")
    ap.add_argument("--only", nargs="+", metavar="WORD", help="only the fault cases whose name holds a word")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gaitrig-faults-"))
    cases = [broker_kills(args.broker_kills), kill_restart("coordinator"), restart_command("coordinator"),
             kill_restart("node-left"), clock_step("rear", 300.0), serial_vanish(3), serial_noise(5),
             serial_impossible(5), coordinator_disk_full(), node_spool_full(), controller_reset()]
    if args.only:
        cases = [c for c in cases if any(w.lower() in c.name.lower() for w in args.only)]
    rows = []
    rig = FaultRig(workdir / "faults").up() if not args.soak_only else None
    try:
        for case in cases if rig else []:
            rows.append(run_case(rig, case))
            print(table(rows[-1:]).splitlines()[-1] if not rows[-1].note else f"{rows[-1].fault}: {rows[-1].note}",
                  file=sys.stderr, flush=True)
    finally:
        if rig:
            rig.down()
    if rows:
        print(table(rows), flush=True)
    soak_figures = None
    if args.soak_min > 0:
        soak_row, soak_figures = soak(workdir / "soak", args.soak_min, args.soak_fps, args.soak_video)
        rows.append(soak_row)
    if soak_figures:
        print("\n" + table(rows[-1:]))
        print(f"\nsoak: frame latency (exposure to delivery over MQTT) p50 {soak_figures['latency_p50_ms']:.1f} ms, "
              f"p99 {soak_figures['latency_p99_ms']:.1f} ms")
        print(f"soak: memory slope after the first minute, MB/h: {soak_figures['slope_mb_per_h']}")
        print(f"soak: RSS at the end, MB: {soak_figures['rss_mb_end']}")
        if "close_s" in soak_figures:
            print(f"soak: belt stop to the session's summary (backlog stored, walk analysed): "
                  f"{soak_figures['close_s']:.0f} s")
    print(f"\nlogs and databases: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
