"""What a metatarsal marker standing in for the camera's toe tip costs at foot off: on the two
public recordings with a hallux marker (rig.validation.forefoot), how much earlier each
metatarsal marker's forward velocity rises through the foot-off level than the hallux's.

No plate is involved (neither recording has plate data): this measures the stand-in, not the
engine. ``.venv/bin/python benchmarks/diag_toe_marker.py [--level 0.0]`` (a few seconds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rig.validation.forefoot import FOOT_OFF_LEVEL, FOREFOOT_TRIALS, forefoot_push_offs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--level", type=float, default=FOOT_OFF_LEVEL,
                    help="foot-off level, treadmill-frame velocity in walking speeds (ours: 0)")
    args = ap.parse_args()
    pooled: dict[str, list[float]] = {}
    print(f"lag of each marker's crossing of {args.level:+.2f} walking speeds behind the hallux's (ms; "
          "negative = earlier)")
    print("| trial | speed m/s | foot | hallux s | " + " | ".join(
        sorted({m for s in FOREFOOT_TRIALS.values() for m in s.others})) + " |")
    for name in FOREFOOT_TRIALS:
        speed, pushes = forefoot_push_offs(name, level=args.level)
        for p in pushes:
            cells = [f"{p.lag_ms[m]:+.1f}" if m in p.lag_ms else "" for m in
                     sorted({m for s in FOREFOOT_TRIALS.values() for m in s.others})]
            print(f"| {name} | {speed:.2f} | {p.side} | {p.hallux_s:.3f} | " + " | ".join(cells) + " |")
            for m, v in p.lag_ms.items():
                pooled.setdefault(m, []).append(v)
    for m, v in sorted(pooled.items()):
        print(f"{m}: median {np.median(v):+.1f} ms, range {min(v):+.1f}..{max(v):+.1f} ({len(v)} push-offs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
