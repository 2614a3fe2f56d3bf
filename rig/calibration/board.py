"""The calibration board: a ChArUco board (chessboard + ArUco markers, OpenCV's aruco
module; Garrido-Jurado et al. 2014) and its detection in one camera's frame.

ChArUco rather than a plain chessboard: every corner carries an id, so a board seen only
in part (turned away from a camera, cut by the image edge, hidden by the technician's
hand) still gives usable, unambiguous corners, and two cameras seeing the same trigger
index agree on which corner is which without any matching.

The default board is 6 × 4 squares of 100 mm (markers 60 mm, DICT_4X4_50) with a 20 mm
white margin: 640 × 440 mm, printed on A1 and glued to a flat rigid sheet. At the rig's
3 m camera distance a marker cell is ≈ 4.3 px, which the detector needs, and the 20 mm
of white between marker and square edge (≈ 9 px) keeps the markers out of the corner
refinement's window: with 62 mm markers in 80 mm squares, simulated corners came out
0.13 px RMS off and the pattern 0.1 % too large (a focal-length bias); with these 0.08 px.
"""
from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

_DICTIONARIES = {"DICT_4X4_50": cv2.aruco.DICT_4X4_50, "DICT_4X4_100": cv2.aruco.DICT_4X4_100,
                 "DICT_5X5_50": cv2.aruco.DICT_5X5_50, "DICT_5X5_100": cv2.aruco.DICT_5X5_100}
MIN_CORNERS = 6


@dataclass(frozen=True)
class BoardSpec:
    """Physical board: squares along x (the long side) and y, sizes in metres."""

    squares_x: int = 6
    squares_y: int = 4
    square_m: float = 0.10
    marker_m: float = 0.06
    margin_m: float = 0.02
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self) -> None:
        if self.dictionary not in _DICTIONARIES:
            raise ValueError(f"unknown ArUco dictionary {self.dictionary!r}; one of {sorted(_DICTIONARIES)}")
        if not 0 < self.marker_m < self.square_m:
            raise ValueError("marker_m must be positive and smaller than square_m")
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError("a ChArUco board needs at least 3 x 3 squares")

    @property
    def size_m(self) -> tuple[float, float]:
        """Printed sheet including the margin (width, height)."""
        return (self.squares_x * self.square_m + 2 * self.margin_m, self.squares_y * self.square_m + 2 * self.margin_m)

    @property
    def bottom_edge_m(self) -> np.ndarray:
        """(2, 3) ends of the sheet's bottom edge in board coordinates: the board stands on
        it on the belt, which is how the calibration finds the belt plane."""
        y = self.squares_y * self.square_m + self.margin_m
        return np.array([[-self.margin_m, y, 0.0], [self.squares_x * self.square_m + self.margin_m, y, 0.0]])

    def board(self) -> cv2.aruco.CharucoBoard:
        dictionary = cv2.aruco.getPredefinedDictionary(_DICTIONARIES[self.dictionary])
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_m, self.marker_m, dictionary)

    def corners_m(self) -> np.ndarray:
        """(N, 3) inner chessboard corners in board coordinates (x right, y down, z into the board)."""
        return self.board().getChessboardCorners().astype(float)

    def to_dict(self) -> dict:
        return asdict(self)


def board_image(spec: BoardSpec, px_per_m: float) -> np.ndarray:
    """The printable sheet (board + white margin) as an 8-bit image at ``px_per_m``."""
    w_m, h_m = spec.size_m
    size = (int(round(w_m * px_per_m)), int(round(h_m * px_per_m)))
    margin_px = int(round(spec.margin_m * px_per_m))
    return spec.board().generateImage(size, marginSize=margin_px, borderBits=1)


def write_png(spec: BoardSpec, path: Path | str, dpi: int = 300) -> Path:
    """PNG at ``dpi`` (print at 100 % scale: the squares then measure ``square_m``)."""
    img = board_image(spec, dpi / 0.0254)
    path = Path(path)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")
    return path


def write_pdf(spec: BoardSpec, path: Path | str, dpi: int = 300) -> Path:
    """One-page PDF whose page is exactly the sheet's physical size, so printing at
    "actual size" gives ``square_m`` squares. Written directly (a grey image XObject,
    Flate-compressed) to need no PDF library."""
    img = board_image(spec, dpi / 0.0254)
    h, w = img.shape
    w_pt, h_pt = (s / 0.0254 * 72.0 for s in spec.size_m)
    data = zlib.compress(img.tobytes())
    content = f"q {w_pt:.3f} 0 0 {h_pt:.3f} 0 0 cm /Im0 Do Q".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt:.3f} {h_pt:.3f}] "
            f"/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".encode(),
            f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray "
            f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream",
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


@dataclass
class Detection:
    """Board corners found in one frame of one camera: ``ids`` (k,) into
    :meth:`BoardSpec.corners_m`, ``corners_px`` (k, 2) sub-pixel image positions."""

    view: str
    index: int  # trigger index: the common clock of all cameras
    ids: np.ndarray
    corners_px: np.ndarray

    def to_dict(self) -> dict:
        return {"view": self.view, "i": int(self.index), "ids": self.ids.tolist(),
                "px": np.round(self.corners_px, 3).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Detection":
        ids = np.asarray(d["ids"], int)
        px = np.asarray(d["px"], float).reshape(-1, 2)
        if len(ids) != len(px):
            raise ValueError(f"detection {d.get('view')}#{d.get('i')}: {len(ids)} ids but {len(px)} corners")
        return cls(str(d["view"]), int(d["i"]), ids, px)


class BoardDetector:
    """ChArUco detection (cv2.aruco.CharucoDetector) of one board; frames with fewer than
    ``min_corners`` corners give nothing (too few to constrain a pose)."""

    def __init__(self, spec: BoardSpec, min_corners: int = MIN_CORNERS) -> None:
        self.spec = spec
        self.min_corners = min_corners
        self._detector = cv2.aruco.CharucoDetector(spec.board())

    def detect(self, image: np.ndarray, view: str, index: int) -> Detection | None:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        corners, ids, _, _ = self._detector.detectBoard(gray)
        if ids is None or len(ids) < self.min_corners:
            return None
        return Detection(view, index, ids.ravel().astype(int), corners.reshape(-1, 2).astype(float))
