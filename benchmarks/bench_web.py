"""Tablet pages on a 10-minute session: server time of the report page, the comparison, the
PDF and the CSV downloads, and of the live page's first stride count (catching up on the
whole session) — over real uvicorn and a real SQLite database recorded as the coordinator
records. The issue's budget: the report page of a 10-minute session in <= 300 ms.

``--video``: the video review in real headless Chromium (Debian's, driven by Playwright):
from a freshly opened review page, the tap on Play until the first frame of the rear view's
2-s clip is drawn and playing — the clip asked of a real clip server holding the simulated
walker's frames, through the tablet pages. The issue's budget: <= 1 s.
Run: ``.venv/bin/python benchmarks/bench_web.py [--video | --pages]`` (default: both).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_web import PASSWORD, login_cookie, serve_app  # noqa: E402

from rig.clinic.accounts import Accounts  # noqa: E402
from rig.clinic.store import ClinicStore  # noqa: E402
from rig.coordinator.storage import Storage  # noqa: E402
from rig.sim.stored_walk import record_walk  # noqa: E402
from rig.sim.walker import WalkerParams  # noqa: E402
from rig.web import create_app  # noqa: E402
from rig.web.database import ReadOnlyDatabase  # noqa: E402
from rig.web.live_strides import SessionStrides  # noqa: E402

FPS = 60.0
WALK_S = 600.0
REPEATS = 15


def timed(url: str, cookie: str) -> tuple[float, int]:
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    return time.perf_counter() - t0, len(body)


def bench_video_start(repeats: int = 10) -> None:
    import tempfile as _tempfile

    from playwright.sync_api import sync_playwright
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from test_web import Tablet
    from test_web_review import ReviewRig
    t0 = time.perf_counter()
    rig = ReviewRig(Path(_tempfile.mkdtemp(prefix="gaitrig-bench-video-")))
    print(f"set-up: a 20-s session recorded, 10 s of rear and left video filmed in {time.perf_counter() - t0:.0f} s")
    in_page, wall = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tablet = Tablet(browser, rig.url).login("carol")
            page = tablet.page
            for _ in range(repeats + 1):  # the first is a warm-up (the browser's own start-up)
                page.goto(f"{rig.url}/sessions/{rig.sid}/review")
                page.select_option("#view-b", "")  # one view
                page.click(".speed[data-speed='1']")
                start = time.perf_counter()
                page.click("#play")
                page.wait_for_selector("#player[data-start-ms]", timeout=30_000)
                wall.append(time.perf_counter() - start)
                in_page.append(float(page.get_attribute("#player", "data-start-ms")) / 1e3)
            tablet.close()
            browser.close()
    finally:
        rig.close()
    in_page, wall = in_page[1:], wall[1:]
    print(f"video start  tap -> first frame of a 2-s rear clip playing: median {statistics.median(in_page) * 1e3:.0f} ms, "
          f"max {max(in_page) * 1e3:.0f} ms in the page; {statistics.median(wall) * 1e3:.0f} / {max(wall) * 1e3:.0f} ms "
          f"as the test driver sees it ({repeats} fresh page loads; budget 1000 ms)")


def main() -> None:
    if "--video" in sys.argv or "--pages" not in sys.argv:
        bench_video_start()
    if "--video" in sys.argv:
        return
    workdir = Path(tempfile.mkdtemp(prefix="gaitrig-bench-web-"))
    storage = Storage(workdir / "gaitrig.sqlite")
    t0 = time.perf_counter()
    a = record_walk(storage, WalkerParams(noise_px=2.0), 1, 1.75e9, WALK_S, FPS)
    b = record_walk(storage, WalkerParams(noise_px=2.0, rearfoot_eversion_left_deg=10.0), 2, 1.75e9 + 3600, WALK_S, FPS)
    strides = json.loads(storage.report(b)[0])["cycles_used"]
    print(f"set-up: two 10-min sessions recorded and analysed in {time.perf_counter() - t0:.0f} s "
          f"(strides used in B: {strides})")
    Accounts(ClinicStore(workdir / "clinic.sqlite")).add("bench", "clinician", PASSWORD)
    server, thread, url = serve_app(create_app(workdir / "gaitrig.sqlite"))
    cookie = login_cookie(url, "bench")
    for name, path in (("report page", f"/sessions/{b}"), ("compare page", f"/compare?a={a}&b={b}"),
                       ("PDF report", f"/sessions/{b}/report.pdf"), ("measures CSV", f"/sessions/{b}/measures.csv"),
                       ("strides CSV", f"/sessions/{b}/strides.csv"), ("sessions list", "/")):
        timed(url + path, cookie)  # warm
        times, size = [], 0
        for _ in range(REPEATS):
            dt, size = timed(url + path, cookie)
            times.append(dt)
        print(f"{name:14s} median {statistics.median(times) * 1e3:6.1f} ms, max {max(times) * 1e3:6.1f} ms "
              f"({size / 1024:.0f} KiB, {REPEATS} requests over loopback)")
    server.should_exit = True
    thread.join(10)
    db = ReadOnlyDatabase(workdir / "gaitrig.sqlite")
    tally = SessionStrides(b, "left", "right" if json.loads(storage.node_info("left"))["facing"] == "right" else "left")
    t0 = time.perf_counter()
    counts = tally.catch_up(db)
    print(f"live strides: catching up on a whole 10-min session ({int(WALK_S * FPS)} frames of one view) in "
          f"{(time.perf_counter() - t0) * 1e3:.0f} ms -> {counts} strides")
    storage.close()


if __name__ == "__main__":
    main()
