"""The video review in real headless Chromium (Playwright driving Debian's chromium): from the
report, the clinician plays the rear view in slow motion, steps frame by frame, watches two
views side by side at the same trigger index with the skeleton over the picture, and jumps
to a detected event. The frames come from real clip servers holding the simulated walker
drawn into real frames, as the simulated nodes record them; the tablet pages pass them on
and keep nothing; a node that is off says so. Screenshots go to tests/output/screenshots."""
from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest
from test_web import FPS, PASSWORD, T0, Tablet, http, login_cookie, record_walk, serve_app  # noqa: F401

from rig.bus.payloads import NodeInfo
from rig.clinic.accounts import Accounts
from rig.clinic.records import Records
from rig.clinic.model import Condition, PatientFields
from rig.clinic.store import ClinicStore
from rig.config import NodeConfig, WebSettings
from rig.coordinator.storage import Storage
from rig.node.camera import CapturedFrame
from rig.node.cli import walker_picture
from rig.sim.broker import free_port
from rig.sim.walker import SimulatedWalker, WalkerParams
from rig.video import protocol
from rig.video.recorder import VideoRecorder
from rig.video.server import ClipServer
from rig.video.store import ClipStore
from rig.web import create_app
from rig.web.review import event_table, review_events

SEED = 5
FILMED = ("rear", "left")  # nodes with video; front's node is off; right's keeps none
FILMED_FRAMES = 600  # the first 10 s of the 20 s walk: enough to play, step and jump, quick to draw


class ReviewRig:
    def __init__(self, tmp):
        self.db_path = tmp / "gaitrig.sqlite"
        self.clinic_path = tmp / "clinic.sqlite"
        accounts = Accounts(ClinicStore(self.clinic_path))
        accounts.add("carol", "clinician", PASSWORD)
        accounts.add("tess", "technician", PASSWORD)
        self.storage = Storage(self.db_path)
        params = WalkerParams(noise_px=0.0)
        self.sid = record_walk(self.storage, params, seed=SEED, started_t=T0)
        self.report = json.loads(self.storage.report(self.sid)[0])
        walker = SimulatedWalker(params, fps=FPS, seed=SEED)
        self.n = self.storage.session(self.sid).pulses_sent
        self.landmarks = walker.render(np.arange(self.n), list(FILMED))
        self.servers = {}
        for view in ("rear", "left", "right", "front"):
            h = walker.header(view)
            url = None
            if view in FILMED:
                store = ClipStore(tmp / "nodes", view)
                self._film(store, view)
                self.servers[view] = ClipServer(store, "127.0.0.1", 0)
                self.servers[view].start()
                url = f"http://127.0.0.1:{self.servers[view].port}"
            elif view == "front":
                url = f"http://127.0.0.1:{free_port()}"  # nobody listens: the node is off
            self.storage.set_node_info(view, NodeInfo(view=view, width=h.width, height=h.height, facing=h.facing,
                                                      camera="simulated", model="simulated walker", simulated=True,
                                                      clips_url=url).model_dump_json())
        self.storage.commit()
        records = Records(ClinicStore(self.clinic_path))
        self.patient = records.create(PatientFields.parse("Review Patient", "", "R-1", ""), "carol")
        records.assign(self.sid, self.patient.id, Condition.parse("barefoot", ""), "carol")
        self.app = create_app(self.db_path, settings=WebSettings(video_timeout_s=2.0))
        self.server, self.thread, self.url = serve_app(self.app)

    def _film(self, store: ClipStore, view: str) -> None:
        """What the simulated node records: every pulse's frame, the walker drawn into it."""
        rec = VideoRecorder(store, walker_picture(NodeConfig(view=view)), lambda: (1456, 1088), 728, 80,
                            10**10, 30.0, queue_frames=FILMED_FRAMES)
        rec.begin(self.sid, FPS)
        for i in range(FILMED_FRAMES):
            rec.put(self.sid, i, CapturedFrame(i / FPS, None, self.landmarks[view][i], i / FPS))
        rec.drain()
        assert rec.stats.recorded == FILMED_FRAMES

    def node_jpeg(self, view: str, index: int) -> np.ndarray:
        url = f"http://127.0.0.1:{self.servers[view].port}/v1/clips/{self.sid}/frames?from={index}&to={index}"
        import urllib.request
        data = urllib.request.urlopen(url, timeout=10).read()
        [(i, jpeg)] = list(protocol.decode_stream(data))
        assert i == index
        return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        for s in self.servers.values():
            s.close()
        self.storage.close()


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    r = ReviewRig(tmp_path_factory.mktemp("review"))
    yield r
    r.close()


@pytest.fixture
def tablet(review, browser):
    t = Tablet(browser, review.url).login("carol")
    yield t
    t.close()


def canvas_image(page, pane: str) -> np.ndarray:
    url = page.evaluate(f"document.querySelector('#pane-{pane} canvas').toDataURL('image/png')")
    data = base64.b64decode(url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def wait_drawn(page, index: int, panes=("a", "b")) -> None:
    for p in panes:
        page.wait_for_selector(f"#pane-{p}[data-drawn-index='{index}']", timeout=20_000)


def shows(review, page, pane: str, view: str, index: int) -> bool:
    """The pane's picture is the node's frame of that trigger index (and not its neighbour's)."""
    got = canvas_image(page, pane).astype(float)
    same = np.abs(got - review.node_jpeg(view, index)).mean()
    other = np.abs(got - review.node_jpeg(view, index + 6)).mean()
    return same < 1.0 and other > 2 * same


def test_the_report_links_to_the_review_and_the_rear_view_plays_in_slow_motion(review, tablet, screenshot_dir):
    page = tablet.page
    page.goto(f"{review.url}/sessions/{review.sid}")
    with page.expect_navigation():
        page.click("#review-link")
    assert page.url.endswith(f"/sessions/{review.sid}/review")
    assert page.get_attribute("#pane-a", "data-view") == "rear"
    assert page.get_attribute("#pane-b", "data-view") == "left"
    page.click(".speed[data-speed='0.25']")
    page.click("#play")
    page.wait_for_selector("#player[data-start-ms]", timeout=20_000)
    when = "[Number(document.getElementById('player').dataset.index), Number(document.getElementById('player').dataset.indexAt)]"
    first = page.evaluate(when)
    page.wait_for_timeout(3000)
    second = page.evaluate(when)
    page.click("#play")  # pause
    rate = (second[0] - first[0]) / ((second[1] - first[1]) / 1000)
    assert 0.8 * FPS / 4 <= rate <= 1.1 * FPS / 4, rate  # a quarter of real time (loading waits, never rushes)
    index = int(page.get_attribute("#player", "data-index"))
    wait_drawn(page, index)
    page.uncheck("#skeleton")
    wait_drawn(page, index)
    assert shows(review, page, "a", "rear", index) and shows(review, page, "b", "left", index)
    page.screenshot(path=str(screenshot_dir / "review-800x1280.png"), full_page=True)


def test_frame_steps_keep_both_views_on_the_same_trigger_index(review, tablet):
    page = tablet.page
    page.goto(f"{review.url}/sessions/{review.sid}/review")
    page.uncheck("#skeleton")
    for _ in range(3):
        page.click("#step-forward")
    wait_drawn(page, 3)
    page.click("#step-back")
    wait_drawn(page, 2)
    assert page.inner_text("#frame-label") == f"frame 2 · {2 / FPS:.2f} s"
    assert shows(review, page, "a", "rear", 2) and shows(review, page, "b", "left", 2)
    before = canvas_image(page, "a")
    page.click("#step-forward")
    wait_drawn(page, 3)
    assert np.abs(canvas_image(page, "a").astype(float) - before).mean() > 0.05  # the picture moved on


def in_table_order(events, number: int) -> list[str]:
    return [e.label for side in ("left", "right") for kind in ("heel_strike", "mid_stance", "toe_off")
            for e in events if (e.side, e.kind, e.number) == (side, kind, number)]


def visible_events(page) -> list[str]:
    """The jump buttons on screen, as their labels, row by row (left foot, then right)."""
    return page.evaluate("[...document.querySelectorAll('#events .event')].filter(e => e.offsetParent !== null)"
                         ".map(e => e.getAttribute('aria-label'))")


def test_jump_to_a_detected_event_with_the_skeleton_drawn_over_the_picture(review, tablet):
    page = tablet.page
    page.goto(f"{review.url}/sessions/{review.sid}/review")
    events = review_events(review.report, FPS)
    strike = next(e for e in events if e.label == "left heel strike 5")
    mid = next(e for e in events if e.label == "right mid-stance 3")
    assert strike.index == round(review.report["events"]["left"]["heel_strike_s"][4] * FPS)
    assert page.locator("#events .event").count() == len(events)
    # one stride at a time: a row per foot, a column per kind, so 100+ events stay readable
    table = event_table(events)
    assert page.input_value("#stride") == str(table.numbers[0])
    assert visible_events(page) == in_table_order(events, table.numbers[0])
    page.click("#stride-next")
    assert page.input_value("#stride") == str(table.numbers[1])
    page.select_option("#stride", "5")
    assert visible_events(page) == in_table_order(events, 5) and len(in_table_order(events, 5)) == 6
    page.click(f"#events .event[data-index='{strike.index}'][data-kind='heel_strike']")
    wait_drawn(page, strike.index)
    with_skeleton = canvas_image(page, "a")
    page.uncheck("#skeleton")
    wait_drawn(page, strike.index)
    plain = canvas_image(page, "a")
    overlay_right = np.array([0, 94, 213])  # BGR of the player's right-side bones (the report's vermillion)
    near = lambda img: int((np.abs(img.astype(int) - overlay_right).sum(axis=2) < 60).sum())  # noqa: E731
    assert near(with_skeleton) > 200 and near(plain) < 20
    assert shows(review, page, "a", "rear", strike.index)
    page.select_option("#stride", "3")
    page.click(f"#events .event[data-index='{mid.index}'][data-kind='mid_stance']")
    wait_drawn(page, mid.index)
    assert page.get_attribute("#player", "data-index") == str(mid.index)
    late = events[-1]  # past what the nodes filmed here
    assert late.index >= FILMED_FRAMES
    page.select_option("#stride", str(late.number))
    page.click(f"#events .event[data-index='{late.index}'][data-kind='{late.kind}']")
    page.wait_for_selector("#pane-a[data-state=gap]", timeout=20_000)
    assert f"kept no frame {late.index}" in page.inner_text("#pane-a .pane-message")


def test_a_node_that_is_off_says_so(review, tablet):
    page = tablet.page
    page.goto(f"{review.url}/sessions/{review.sid}/review")
    page.select_option("#view-b", "front")
    page.wait_for_selector("#pane-b[data-state=offline]", timeout=20_000)
    assert "camera node front is offline" in page.inner_text("#pane-b .pane-message")
    page.click("#step-forward")
    wait_drawn(page, 1, panes=("a",))  # the other view still plays
    page.select_option("#view-b", "right")
    page.wait_for_selector("#pane-b[data-state=error]", timeout=20_000)
    assert "camera node right keeps no review video" in page.inner_text("#pane-b .pane-message")


@pytest.mark.parametrize("width, height", [(800, 1280), (1280, 800)])
def test_review_fits_a_tablet_with_finger_sized_controls(review, browser, screenshot_dir, width, height):
    t = Tablet(browser, review.url, width, height).login("carol")
    try:
        t.page.goto(f"{review.url}/sessions/{review.sid}/review")
        t.page.click("#step-forward")
        wait_drawn(t.page, 1)
        assert t.page.evaluate("document.documentElement.scrollWidth") <= width
        heights = t.page.evaluate("[...document.querySelectorAll('#player button, #player select, #events button, "
                                  "#events select')].filter(e => e.offsetParent !== null)"
                                  ".map(e => e.getBoundingClientRect().height)")
        assert heights and min(heights) >= 44
        t.page.screenshot(path=str(screenshot_dir / f"review-{width}x{height}.png"), full_page=True)
    finally:
        t.close()


def test_the_pages_pass_the_nodes_frames_through_unchanged_and_log_who_opened_the_review(review):
    cookie = login_cookie(review.url, "carol")
    import urllib.request
    req = urllib.request.Request(f"{review.url}/api/sessions/{review.sid}/video/rear?from=10&to=129",
                                 headers={"Cookie": cookie})
    via_pages = urllib.request.urlopen(req, timeout=20).read()
    direct = urllib.request.urlopen(f"http://127.0.0.1:{review.servers['rear'].port}/v1/clips/{review.sid}"
                                    f"/frames?from=10&to=129", timeout=20).read()
    assert via_pages == direct and len(list(protocol.decode_stream(via_pages))) == 120
    code, body = http(f"{review.url}/api/sessions/{review.sid}/keypoints/rear?from=10&to=11", cookie)
    kp = json.loads(body)
    assert code == 200 and sorted(kp["frames"]) == ["10", "11"] and kp["width"] == 1456
    heel = review.landmarks["rear"][10][29]
    assert kp["frames"]["10"][29][:2] == pytest.approx([heel[0], heel[1]], abs=0.1)
    assert http(f"{review.url}/api/sessions/{review.sid}/video/rear?from=5&to=1", cookie)[0] == 400
    assert http(f"{review.url}/api/sessions/{review.sid}/video/top?from=1&to=5", cookie)[0] == 404
    log = ClinicStore(review.clinic_path).audit_log(review.patient.id)
    entries = [(e.username, e.action, e.session_id) for e in log]
    assert ("carol", "open video review", review.sid) in entries
    assert ("carol", "fetch video clip: rear view, frames 10-129", review.sid) in entries  # who, which view
    assert ("carol", "fetch video clip: rear view, frames 5-1", review.sid) not in entries  # refused: no clip


def test_a_technician_cannot_watch_patients_video(review):
    cookie = login_cookie(review.url, "tess")
    for path in (f"/sessions/{review.sid}/review", f"/api/sessions/{review.sid}/video/rear?from=0&to=5",
                 f"/api/sessions/{review.sid}/keypoints/rear?from=0&to=5"):
        assert http(review.url + path, cookie)[0] == 403, path
    assert http(f"{review.url}/api/sessions/{review.sid}/video/rear?from=0&to=5")[0] == 401  # logged out


def test_nothing_is_kept_by_the_pages_a_stopped_node_is_offline_at_once(review):
    """Run last: the rear node stops; what was played before is not served from anywhere."""
    cookie = login_cookie(review.url, "carol")
    review.servers["rear"].close()
    code, body = http(f"{review.url}/api/sessions/{review.sid}/video/rear?from=10&to=20", cookie)
    assert code == 503 and "camera node rear is offline" in json.loads(body)["error"]
