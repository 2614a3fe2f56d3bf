"""Reading video files: decoding on a thread ahead of inference, or all at once."""
from __future__ import annotations

import itertools
import queue
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np


def decoded_frames(cap, maxsize: int = 2) -> Iterator[np.ndarray]:
    """Frames from a capture, decoded on a thread ahead of inference (OpenCV releases the
    GIL while decoding, so decode overlaps the TFLite invoke)."""
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                q.put(frame)
        finally:
            q.put(None)

    thread = threading.Thread(target=reader, name="video-decode", daemon=True)
    thread.start()
    try:
        while (frame := q.get()) is not None:
            yield frame
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                time.sleep(0.001)
        thread.join()


def read_frames(path: Path | str, limit: int | None = None) -> list[np.ndarray]:
    """The first ``limit`` frames of a video (all without a limit), BGR."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    try:
        return list(itertools.islice(decoded_frames(cap), limit))
    finally:
        cap.release()
