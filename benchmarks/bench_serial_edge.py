"""The serial edge under faults, as figures: decoder speed on line noise and on checked
frames, and how long the bridge takes to publish an emergency stop whose state frame was
lost on the line, and a controller reset — through the simulated controller on a pty and
a real Mosquitto. ``.venv/bin/python benchmarks/bench_serial_edge.py [--trials N]``
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from firmware_bridge.bridge import Bridge
from firmware_bridge.protocol import framing, messages as m
from firmware_bridge.protocol.framing import FrameDecoder, encode_frame
from firmware_bridge.simulator import TreadmillSimulator
from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import TreadmillEvent, decode
from rig.config import BridgeConfig, SerialSettings
from rig.sim.broker import LocalBroker


def decoder_figures() -> list[tuple[str, str]]:
    rng = random.Random(1)
    noise = rng.randbytes(8_000_000)
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    t0 = time.perf_counter()
    for i in range(0, len(noise), 4096):
        dec.feed(noise[i:i + 4096])
    noise_s = time.perf_counter() - t0
    belt = framing.DELIMITER + encode_frame(1, *m.encode(m.BeltStateMsg(10**9, True, 1200, 20, False)))
    n = 100_000
    data = belt * n
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES, track_sequence=False)
    t0 = time.perf_counter()
    for f in dec.feed(data):
        m.validate(m.decode(f.type, f.body), 1_000_000)
    frames_s = time.perf_counter() - t0
    return [("random noise through the decoder", f"{len(noise) / noise_s / 1e6:.0f} MB/s, 0 frames forged"),
            ("BELT_STATE frames decoded + range-checked", f"{n / frames_s / 1000:.0f} k frames/s "
             f"({frames_s / n * 1e6:.1f} µs each)")]


class Events:
    def __init__(self, settings):
        self.client = BusClient(settings, "bench").start()
        self.seen: list[tuple[float, TreadmillEvent]] = []
        self.cond = threading.Condition()
        self.client.on(topics.TREADMILL_EVENT, self._on)

    def _on(self, msg) -> None:
        with self.cond:
            self.seen.append((time.monotonic(), decode(TreadmillEvent, msg.payload)))
            self.cond.notify_all()

    def wait(self, kind: str, after: float, timeout_s: float = 10.0) -> float | None:
        def found():
            return next((t for t, e in self.seen if e.kind == kind and t >= after), None)
        with self.cond:
            t = self.cond.wait_for(found, timeout_s)
        return None if t is None else t - after


def bridge_figures(trials: int) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalBroker(Path(tmp)).start()
        sim = TreadmillSimulator(seed=3).start()
        serial = SerialSettings(port=sim.path, reconnect_min_s=0.1, reconnect_max_s=0.5)
        bridge = Bridge(BridgeConfig(mqtt=broker.settings(), serial=serial), simulated=True).start()
        events = Events(broker.settings())
        try:
            time.sleep(1.0)
            estop, reset = [], []
            for _ in range(trials):
                sim.corrupt_next(1, "truncate", only=(m.BeltStateMsg,))
                t0 = time.monotonic()
                sim.estop()
                estop.append(events.wait("estop", t0))
                sim.estop_release()
                events.wait("estop_released", time.monotonic())
                t0 = time.monotonic()
                sim.reset()
                reset.append(events.wait("controller_reset", t0))
                time.sleep(0.5)
        finally:
            events.client.close()
            bridge.stop()
            sim.stop()
            broker.stop()
    return [(f"estop published, its state frame lost ({trials} trials)", _spread(estop)),
            (f"controller reset published ({trials} trials)", _spread(reset))]


def _spread(values: list[float | None]) -> str:
    got = [v * 1000 for v in values if v is not None]
    missing = len(values) - len(got)
    if not got:
        return f"never ({missing} missing)"
    return f"median {statistics.median(got):.0f} ms, max {max(got):.0f} ms, missing {missing}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=5)
    args = p.parse_args()
    rows = decoder_figures() + bridge_figures(args.trials)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
