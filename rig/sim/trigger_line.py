"""The simulated hardware trigger line: a small shared-memory file the simulated treadmill
controller writes every pulse to, and simulated cameras read — so a simulated camera sees
exactly the pulses the controller sent, as a wired camera would, and not one more.

Layout (little-endian): seq u64 (seqlock: odd while writing), train u64 (increments on every
arm), first_pulse_t f64 (host Unix s), rate_hz f64, pulses u64, armed u64.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

_LAYOUT = struct.Struct("<QQddQQ")


@dataclass(frozen=True)
class TrainSnapshot:
    train: int
    first_pulse_t: float
    rate_hz: float
    pulses: int
    armed: bool


class TriggerLine:
    def __init__(self, path: Path | str, create: bool = False):
        self.path = Path(path)
        if create:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(b"\0" * _LAYOUT.size)
            os.replace(tmp, self.path)
        fd = os.open(self.path, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, _LAYOUT.size)
        finally:
            os.close(fd)

    # writer (the simulator) -------------------------------------------------------------------
    def _write(self, train: int, first: float, rate: float, pulses: int, armed: bool) -> None:
        seq = struct.unpack_from("<Q", self._mm)[0]
        struct.pack_into("<Q", self._mm, 0, seq + 1)
        _LAYOUT.pack_into(self._mm, 0, seq + 1, train, first, rate, pulses, int(armed))
        struct.pack_into("<Q", self._mm, 0, seq + 2)

    def arm(self, first_pulse_t: float, rate_hz: float) -> None:
        self._write(self.read().train + 1, first_pulse_t, rate_hz, 0, True)

    def pulses(self, count: int, armed: bool = True) -> None:
        s = self.read()
        self._write(s.train, s.first_pulse_t, s.rate_hz, count, armed)

    # reader (simulated cameras) ----------------------------------------------------------------
    def read(self) -> TrainSnapshot:
        while True:
            seq, train, first, rate, pulses, armed = _LAYOUT.unpack_from(self._mm)
            if seq % 2 == 0 and struct.unpack_from("<Q", self._mm)[0] == seq:
                return TrainSnapshot(train, first, rate, pulses, bool(armed))

    def close(self) -> None:
        self._mm.close()
