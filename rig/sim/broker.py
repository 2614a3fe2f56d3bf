"""A real Mosquitto broker started on a free loopback port, for the demo and the tests."""
from __future__ import annotations

import getpass
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from rig.config import MqttSettings


LOWEST_PORT = 20000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A loopback port nothing listens on, for a server started next, chosen *below* the
    kernel's ephemeral range: a port the kernel hands out (binding to 0) can be taken, before
    the server binds it, as the source port of any outgoing connection on the machine — the
    rig's own MQTT clients make dozens — and the server then fails with "address already in
    use" (seen in CI: the tablet server of a test rig)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(LOWEST_PORT, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free loopback port in {LOWEST_PORT}-{low - 1}")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 unless configured otherwise)."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, LOWEST_PORT + 1000)


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def mosquitto_path() -> str:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        raise RuntimeError("mosquitto is not installed: run `make setup` (Debian package mosquitto)")
    return exe


class LocalBroker:
    """``stop()``/``start()`` simulate an outage on the same port."""

    def __init__(self, workdir: Path, config: str | None = None, port: int | None = None):
        self.exe, self.port = mosquitto_path(), port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(config if config is not None else self.default_config(workdir))
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def default_config(self, workdir: Path) -> str:
        """Anonymous on loopback; persistence on, as on a rig, so retained state and queued
        QoS 1 messages survive a broker restart; a queue deep enough for a minute of frames."""
        return (f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
                f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
                "max_queued_messages 100000\nmax_inflight_messages 100\n")

    def start(self) -> "LocalBroker":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port)
        except TimeoutError:
            raise RuntimeError(f"mosquitto did not start; see {self.log}") from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def settings(self, rig_id: str = "test") -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port, rig_id=rig_id, keepalive_s=5)
