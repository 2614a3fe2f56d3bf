"""sd_notify against a real AF_UNIX datagram socket, as systemd would listen on it."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest

from rig.ops import notify
from rig.ops.notify import Liveness, Watchdog

WATCHDOG_USEC = 200_000  # pings every 0.1 s


class Listener:
    """The systemd side: a bound datagram socket collecting messages with arrival times."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, text: str, timeout_s: float = 2.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, m in self.messages:
                if text in m:
                    return m
            time.sleep(0.01)
        raise AssertionError(f"{text!r} never arrived; got {[m for _, m in self.messages]}")

    def pings_between(self, t0: float, t1: float) -> int:
        return sum(1 for t, m in self.messages if t0 <= t < t1 and m == "WATCHDOG=1")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def listener(request, tmp_path, monkeypatch):
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        monkeypatch.setenv("NOTIFY_SOCKET", address)
    else:
        name = f"gaitrig-test-{uuid.uuid4().hex}"
        address = "\0" + name
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    lst = Listener(address)
    yield lst
    lst.close()


def test_ready_status_stopping_arrive_as_key_value_datagrams(listener):
    assert notify.ready("waiting for a session")
    assert listener.wait_for("READY=1") == "READY=1\nSTATUS=waiting for a session"
    assert notify.status("recording\nsession 7")
    assert listener.wait_for("STATUS=recording") == "STATUS=recording session 7"  # one line, never two fields
    assert notify.stopping()
    assert listener.wait_for("STOPPING=1") == "STOPPING=1"


def test_watchdog_pings_every_half_interval_and_stops_while_the_pipeline_stalls(listener):
    moving = threading.Event()
    moving.set()
    with Watchdog(moving.is_set) as dog:
        assert dog.ping_every_s == pytest.approx(0.1)
        t0 = time.monotonic()
        time.sleep(1.0)
        assert 8 <= listener.pings_between(t0, t0 + 1.0) <= 12  # 10 expected

        moving.clear()  # the camera hangs
        listener.wait_for("STATUS=pipeline stalled")
        t1 = time.monotonic()
        time.sleep(0.6)  # > 2 intervals: systemd would have killed us
        assert listener.pings_between(t1, t1 + 0.6) == 0

        moving.set()
        listener.wait_for("STATUS=pipeline moving again")
        t2 = time.monotonic()
        time.sleep(0.35)
        assert listener.pings_between(t2, t2 + 0.35) >= 2
    stopped = time.monotonic()
    time.sleep(0.25)
    assert listener.pings_between(stopped, stopped + 0.25) == 0  # thread gone after the with-block


def test_a_liveness_check_that_raises_counts_as_stalled(listener):
    def broken() -> bool:
        raise RuntimeError("camera handle gone")
    dog = Watchdog(broken)
    assert dog.tick() is False
    assert dog.pings == 0 and dog.withheld == 1
    listener.wait_for("STATUS=pipeline stalled")


def test_liveness_stalls_after_the_limit_unless_idle_by_design():
    now = [100.0]
    live = Liveness(stall_after_s=5.0, clock=lambda: now[0])
    assert live()
    now[0] += 5.5
    assert not live()  # no frame for 5.5 s while recording: hung
    live.beat()
    assert live()
    now[0] += 60
    live.set_idle(True)  # between sessions the node has nothing to prove
    assert live()
    live.set_idle(False)  # a session starts: the stall clock starts now, not at the last frame
    assert live()
    now[0] += 5.5
    assert not live()


def test_no_systemd_means_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify.ready() is False and notify.watchdog() is False
    dog = Watchdog(lambda: True).start()
    assert not dog.enabled and dog._thread is None
    dog.stop()


def test_watchdog_for_another_pid_is_not_ours(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert notify.watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_PID")
    assert notify.watchdog_interval_s() == pytest.approx(0.2)


def test_a_vanished_socket_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert notify.ready() is False
