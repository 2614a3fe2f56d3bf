"""Patient selection with a second real person in view: share of frames that follow the patient.

    .venv/bin/python benchmarks/bench_person_select.py [--cams cam01.mp4,cam03.mp4] [--misses]
        [--keyframe-interval 4]

Scenes (benchmarks/person_scenes.py): pose2sim's treadmill subject (cam01-04, 100 frames each
at 60 fps) with a real person from the Sports2D demo pasted beside the belt (``bystander``),
crossing in front (``passer``) and stepping in to stand in front (``in_front``); the belt ROI
is the one a new user would draw. "Before" is the node's pipeline with the belt ROI only (the patient
model's gates switched off); "after" adds :class:`PatientSelector`. A frame follows the
patient if the landmarks are the patient's (box IoU ≥ 0.5 with the clean clip's) or if
"patient not visible" is reported while the person in front covers at least a quarter of
the patient. Goal ≥ 99 %.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import person_scenes as ps  # noqa: E402

from edge_models.pose import PosePipeline  # noqa: E402
from edge_models.pose.person_select import PatientSelector, Verdict  # noqa: E402

GOAL = 0.99


class BeltOnly(PatientSelector):
    """The node before the patient model: every fit that passes the belt ROI is taken."""

    def check(self, body, followed: bool = False) -> Verdict:
        return Verdict.PATIENT


class MissPrinter:
    """Prints a missed frame: the patient's visible share, the answer's box overlap with the
    patient and the other person, and the pipeline's counters that moved on that frame
    (track lost, detector runs, rejections by reason, painted-out runs)."""

    def __init__(self, cam: str, scenario: str, pipe: PosePipeline):
        self.cam, self.scenario, self.pipe = cam, scenario, pipe
        self._moved: dict[str, int] = {}

    def _counters(self) -> dict[str, int]:
        c = {k: v for k, v in self.pipe.stats.__dict__.items() if k not in ("frames", "found")}
        c.update(self.pipe.selector.stats.rejected)
        return c

    def process(self, frame):
        before = self._counters()
        lm = self.pipe.process(frame)
        self._moved = {k: v - before[k] for k, v in self._counters().items() if v != before[k]}
        return lm

    def __call__(self, k: int, frame: ps.SceneFrame, lm) -> None:
        if lm is None:
            given = "patient not visible"
        else:
            box = ps.landmark_box(lm)
            other = "-" if frame.other_box is None else f"{ps.box_iou(box, frame.other_box):.2f}"
            given = f"landmarks, box IoU patient {ps.box_iou(box, frame.patient_box):.2f} other {other}"
        visible = 100 * frame.patient_visible
        print(f"  miss {self.cam} {self.scenario} frame {k}: patient {visible:.0f} % visible;"
              f" {given}; on this frame: {self._moved}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cams", default=",".join(ps.CAMS))
    p.add_argument("--scenarios", default=",".join(ps.SCENARIOS))
    p.add_argument("--preview-dir", type=Path, help="write a contact sheet per scene here")
    p.add_argument("--keyframe-interval", type=int, default=1, help="run the model every N frames with "
                   "optical flow between, as the node does when it cannot keep up (1: every frame)")
    p.add_argument("--misses", action="store_true", help="print each frame that does not follow the "
                   "patient (after; every-frame runs only): what was given and what the pipeline rejected on it")
    args = p.parse_args(argv)
    if args.keyframe_interval < 1:
        p.error(f"--keyframe-interval must be >= 1, got {args.keyframe_interval}")
    cams, scenarios = args.cams.split(","), args.scenarios.split(",")
    totals: dict[tuple[str, str], ps.Score] = {}
    t0 = time.perf_counter()
    for cam in cams:
        for scenario in scenarios:
            for mode, selector in (("before", BeltOnly), ("after", PatientSelector)):
                pipe = PosePipeline(threads=2, belt_roi=ps.USER_BELT_ROI[cam], selector=selector())
                preview = args.preview_dir / f"{scenario}_{cam}_{mode}.png" if args.preview_dir else None
                printer = MissPrinter(cam, scenario, pipe) if args.misses and mode == "after" else None
                if args.keyframe_interval > 1:
                    s = ps.run_scene_keyframes(scenario, cam, pipe, args.keyframe_interval)
                else:
                    s = ps.run_scene(scenario, cam, printer.process if printer else pipe.process, preview,
                                     on_miss=printer)
                totals[scenario, mode] = totals[scenario, mode] + s if (scenario, mode) in totals else s
                print(f"{cam} {scenario:9s} {mode:6s} followed {s.followed}/{s.frames}  wrong person "
                      f"{s.wrong_person}  missed {s.missed}  hidden {s.hidden} (reported {s.hidden_reported})"
                      f"  occluded->not visible {s.occluded_not_visible}"
                      f"  detector runs {pipe.stats.detector_runs}  landmark runs {pipe.landmark_interpreter.runs}"
                      f" (on another person over the patient {pipe.stats.other_fits})", flush=True)
    print(f"\nshare of frames following the patient ({', '.join(cams)}; goal >= {100 * GOAL:.0f} %)")
    print(f"{'scenario':10s} {'before':>16s} {'after':>16s}  wrong person after  hidden reported after")
    ok = True
    for scenario in scenarios:
        b, a = totals[scenario, "before"], totals[scenario, "after"]
        ok &= a.share >= GOAL
        print(f"{scenario:10s} {100 * b.share:6.1f} % {b.followed:3d}/{b.frames}"
              f" {100 * a.share:6.1f} % {a.followed:3d}/{a.frames}  {a.wrong_person:18d}"
              f"  {a.hidden_reported}/{a.hidden}")
    print(f"({time.perf_counter() - t0:.0f} s on this machine, shared with other work)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
