"""``gaitrig calibrate``: the board to print, board detection on a node's frames, the
joint solve on the coordinator, the camera-moved check, and a simulated minute of
calibration footage to try it all. Exit 2 with one line on stderr for bad input."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rig.config import DEFAULT_CALIBRATION
from rig.threed.camera import read_json_document

from .board import BoardDetector, BoardSpec, Detection, write_pdf, write_png
from .moved import CameraMoveDetector, default_still_dir, save_calibration_still
from .solve import CalibrationError, RigCalibrator

DETECTIONS_FORMAT = "gaitrig-board-detections/1"


def _fail(msg: str) -> int:
    print(f"gaitrig: error: {msg}", file=sys.stderr)
    return 2


def _spec(args) -> BoardSpec:
    sx, sy = (int(v) for v in args.squares.lower().split("x"))
    return BoardSpec(squares_x=sx, squares_y=sy, square_m=args.square_mm / 1000, marker_m=args.marker_mm / 1000,
                     margin_m=args.margin_mm / 1000, dictionary=args.dictionary)


def _board_args(p: argparse.ArgumentParser) -> None:
    d = BoardSpec()
    p.add_argument("--squares", default=f"{d.squares_x}x{d.squares_y}", help="squares across x down (default %(default)s)")
    p.add_argument("--square-mm", type=float, default=d.square_m * 1000, help="printed square size (default %(default)g mm)")
    p.add_argument("--marker-mm", type=float, default=d.marker_m * 1000, help="printed marker size (default %(default)g mm)")
    p.add_argument("--margin-mm", type=float, default=d.margin_m * 1000, help="white margin (default %(default)g mm)")
    p.add_argument("--dictionary", default=d.dictionary, help="ArUco dictionary (default %(default)s)")


def run_board(args) -> int:
    try:
        spec = _spec(args)
    except ValueError as e:
        return _fail(f"board: {e}")
    out = Path(args.out)
    writer = write_pdf if out.suffix.lower() == ".pdf" else write_png if out.suffix.lower() == ".png" else None
    if writer is None:
        return _fail(f"{out}: the board is written as .pdf or .png")
    writer(spec, out, dpi=args.dpi)
    w, h = spec.size_m
    print(f"{out}: {spec.squares_x}x{spec.squares_y} ChArUco board, squares {spec.square_m * 1000:g} mm, "
          f"sheet {w * 1000:.0f} x {h * 1000:.0f} mm; print at 100 % (actual size) and check one square with a ruler")
    return 0


def run_detect(args) -> int:
    """Node side: every ``<trigger index>.png`` in a folder -> one detections file."""
    try:
        spec = _spec(args)
    except ValueError as e:
        return _fail(f"board: {e}")
    frames = sorted(Path(args.frames).glob("*.png"))
    if not frames:
        return _fail(f"{args.frames}: no <trigger index>.png frames")
    det = BoardDetector(spec)
    found = []
    board_free = None  # the first frame, when the board is not in it: the scene alone, for the camera-moved check
    size = None
    for f in frames:
        if not f.stem.isdigit():
            return _fail(f"{f}: frame names must be the trigger index (e.g. 000123.png)")
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is None:
            return _fail(f"{f}: not a readable image")
        size = img.shape[::-1]
        d = det.detect(img, args.view, int(f.stem))
        if d is not None:
            found.append(d.to_dict())
        elif f == frames[0]:  # later board-less frames may show its back or an edge: never a reference
            board_free = (f, img)
    doc = {"format": DETECTIONS_FORMAT, "view": args.view, "width": size[0], "height": size[1],
           "board": spec.to_dict(), "detections": found}
    Path(args.out).write_text(json.dumps(doc))
    print(f"{args.view}: board found in {len(found)} of {len(frames)} frames -> {args.out}")
    still_dir = Path(args.still_dir) if args.still_dir else default_still_dir()
    if still_dir is None:
        print("no state directory here (pass --still-dir): no reference still saved for the camera-moved check")
    elif board_free is None:
        print(f"{args.view}: the board is in the first frame: no reference still saved for the camera-moved check "
              "(start filming before the board comes into view and detect again)", file=sys.stderr)
    else:
        path = save_calibration_still(board_free[1], still_dir)
        print(f"{args.view}: reference still for the camera-moved check: {board_free[0].name} -> {path}")
    return 0


def load_detections(path: Path) -> tuple[dict, list[Detection]]:
    doc = read_json_document(path, DETECTIONS_FORMAT, CalibrationError)
    try:
        return doc, [Detection.from_dict(d) for d in doc["detections"]]
    except (KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"{path}: {e}") from None


def run_solve(args) -> int:
    """Coordinator side: all views' detections -> the rig calibration file."""
    from rig.threed.camera import save_cameras
    try:
        docs = [load_detections(Path(p)) for p in args.detections]
        specs = {json.dumps(d["board"], sort_keys=True) for d, _ in docs}
        if len(specs) != 1:
            raise CalibrationError("the detection files were made with different boards")
        spec = BoardSpec(**docs[0][0]["board"])
        sizes = {d["view"]: (int(d["width"]), int(d["height"])) for d, _ in docs}
        res = RigCalibrator(spec, sizes).solve([x for _, dets in docs for x in dets])
    except (CalibrationError, ValueError, TypeError) as e:
        return _fail(str(e).splitlines()[0])
    meta = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "board": spec.to_dict(),
            "belt_frames": res.n_belt_frames, "belt_plane_rms_mm": round(res.belt_plane_rms_mm, 3),
            "world_frame": "z up from the belt plane, x the walking direction (rear to front camera), "
                           "origin on the belt under the cameras' centre"}
    out = Path(args.out)
    try:
        save_cameras(out, res.cameras, meta)
    except OSError as e:
        return _fail(f"cannot write the calibration to {out} ({e.strerror or e}): run as the gaitrig user "
                     "(or with sudo) or pass --out")
    for v, cam in res.cameras.items():
        x, y, z = cam.position_m
        print(f"{v:6s} reprojection {res.rms_px[v]:.2f} px over {res.n_frames[v]} frames; "
              f"at ({x:+.3f}, {y:+.3f}, {z:+.3f}) m, f = {cam.fx:.1f} px")
    print(f"belt plane from {res.n_belt_frames} frames (edge points {res.belt_plane_rms_mm:.2f} mm RMS)")
    print(f"calibration written to {out}")
    if out.resolve() == DEFAULT_CALIBRATION.resolve():
        print("the coordinator reads it when it starts (analysis.calibration): restart it "
              "(sudo systemctl restart gaitrig-coordinator) and its reports are 3D")
    else:
        print(f"the coordinator reads analysis.calibration (default {DEFAULT_CALIBRATION}) when it starts: "
              "point it there, or copy the file there, then restart it for 3D reports")
    return 0


def run_check_moved(args) -> int:
    ref = cv2.imread(args.reference, cv2.IMREAD_GRAYSCALE)
    cur = cv2.imread(args.current, cv2.IMREAD_GRAYSCALE)
    for path, img in ((args.reference, ref), (args.current, cur)):
        if img is None:
            return _fail(f"{path}: not a readable image")
    check = CameraMoveDetector(threshold_px=args.threshold_px).check(ref, cur)
    print(f"{check.status}: {check.message}")
    return 1 if check.moved else 0


def run_simulate(args) -> int:
    """A simulated minute of calibration footage: <out>/<view>/<trigger index>.png + truth."""
    from rig.sim._camera import default_cameras
    from rig.threed.camera import CameraModel, save_cameras

    from . import simulate as sim
    spec = BoardSpec()
    rng = np.random.default_rng(args.seed)
    cams = {k: CameraModel.from_sim(c, dist=sim.EXAMPLE_DISTORTION[k]) for k, c in default_cameras().items()}
    out = Path(args.out)
    n = 0
    for view, index, img in sim.footage(spec, cams, rng, args.closeups, args.belt_poses):
        (out / view).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / view / f"{index:06d}.png"), img)
        n += 1
    save_cameras(out / "truth.json", cams, {"note": "the simulated cameras' true parameters"})
    print(f"{n} frames in {out}/<view>/, true cameras in {out / 'truth.json'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="rig calibration: ChArUco board, detection, joint solve, moved check")
    csub = p.add_subparsers(dest="calibrate_command", metavar="STEP", required=True)
    b = csub.add_parser("board", help="write the printable ChArUco board (.pdf or .png)")
    b.add_argument("--out", default="charuco-board.pdf")
    b.add_argument("--dpi", type=int, default=300)
    _board_args(b)
    b.set_defaults(func=run_board)
    d = csub.add_parser("detect", help="find the board in one camera's frames (<trigger index>.png)")
    d.add_argument("--view", required=True, choices=["left", "right", "rear", "front"])
    d.add_argument("--frames", required=True, help="folder of frames named by trigger index")
    d.add_argument("--out", required=True, help="detections file (JSON)")
    d.add_argument("--still-dir", help="where the reference still for the camera-moved check goes (the first "
                                       "frame, filmed before the board comes in; default: the node's state directory)")
    _board_args(d)
    d.set_defaults(func=run_detect)
    s = csub.add_parser("solve", help="solve all cameras together from the views' detection files")
    s.add_argument("detections", nargs="+", help="detection files, one per view")
    s.add_argument("--out", default=str(DEFAULT_CALIBRATION),
                   help="calibration file (default %(default)s, where the coordinator reads it)")
    s.set_defaults(func=run_solve)
    m = csub.add_parser("check-moved", help="compare a camera's still frame with the one from calibration time")
    m.add_argument("--reference", required=True, help="still frame stored at calibration")
    m.add_argument("--current", required=True, help="a still frame taken now")
    m.add_argument("--threshold-px", type=float, default=0.5)
    m.set_defaults(func=run_check_moved)
    g = csub.add_parser("simulate", help="render a simulated minute of calibration footage")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--closeups", type=int, default=24, help="close-up frames per camera")
    g.add_argument("--belt-poses", type=int, default=72, help="board poses on the belt")
    g.set_defaults(func=run_simulate)
