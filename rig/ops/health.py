"""The figures every daemon reports about the machine it runs on, and the rules that turn
figures into problems — pure functions over ``/proc`` and ``/sys`` (paths injectable for
tests), no MQTT. ``rig.ops.diag`` publishes them.

A *problem* is a condition that is true now (``disk_low``); the agent reports the active
ones in every health message and sends an event when one is raised or cleared, so a
technician watching events learns of it at once and one reading health sees it later.
"""
from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import Iterable

THERMAL_DIR = Path("/sys/class/thermal")
PROC_STATUS = Path("/proc/self/status")
PROC_MEMINFO = Path("/proc/meminfo")
CPU_ZONE_WORDS = ("cpu", "soc", "x86_pkg", "package")  # Raspberry Pi: "cpu-thermal"

DISK_LOW_MB = 500.0  # a minute of four 60 fps keypoint streams is ~4 MB; a spool or a database needs room
CPU_HOT_C = 80.0  # the Pi 4/5 start throttling at 80-85 °C
MEM_LOW_MB = 100.0

# event level of each problem kind; anything else is a warning
EVENT_LEVELS = {"camera_lost": "error", "frames_lost": "error", "serial_down": "error",
                "controller_silent": "error", "disk_low": "warning", "database_unwritable": "error"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cpu_temp_c(thermal_dir: Path = THERMAL_DIR) -> float | None:
    """The CPU's thermal zone (by its type), else the first zone; None without any (VMs, CI)."""
    zones = sorted(thermal_dir.glob("thermal_zone*")) if thermal_dir.is_dir() else []
    typed = [(((_read(z / "type") or "").strip().lower()), z) for z in zones]
    preferred = [z for kind, z in typed if any(w in kind for w in CPU_ZONE_WORDS)]
    for zone in preferred + zones:
        raw = _read(zone / "temp")
        try:
            return round(int(raw.strip()) / 1000.0, 1)  # millidegrees
        except (AttributeError, ValueError):
            continue
    return None


def _kib_field(text: str | None, key: str) -> float | None:
    for line in (text or "").splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024.0, 1)
    return None


def mem_rss_mb(status: Path = PROC_STATUS) -> float | None:
    """Resident memory now (VmRSS), not the peak that getrusage reports."""
    return _kib_field(_read(status), "VmRSS")


def mem_available_mb(meminfo: Path = PROC_MEMINFO) -> float | None:
    return _kib_field(_read(meminfo), "MemAvailable")


def cpu_load_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def disk_free_mb(path: Path | None) -> float | None:
    """Free space where the daemon writes (spool, database, logs)."""
    try:
        return round(shutil.disk_usage(path or "/").free / 1e6, 1)
    except OSError:
        return None


def state_dir(*candidates: Path | str | None) -> Path:
    """The first existing of: the given paths, systemd's $STATE_DIRECTORY, /var/lib/gaitrig, /."""
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or None
    for c in (*candidates, env, "/var/lib/gaitrig"):
        if c and Path(c).is_dir():
            return Path(c)
    return Path("/")


def system_figures(disk_path: Path | None, started_monotonic: float) -> dict:
    return {"uptime_s": round(time.monotonic() - started_monotonic, 1), "cpu_load_1m": cpu_load_1m(),
            "cpu_temp_c": cpu_temp_c(), "mem_rss_mb": mem_rss_mb(), "mem_available_mb": mem_available_mb(),
            "disk_free_mb": disk_free_mb(disk_path)}


def common_problems(f: dict) -> dict[str, str]:
    """Problems any daemon can have, from ``system_figures``."""
    out = {}
    if f.get("disk_free_mb") is not None and f["disk_free_mb"] < DISK_LOW_MB:
        out["disk_low"] = f"{f['disk_free_mb']:.0f} MB free (< {DISK_LOW_MB:.0f} MB)"
    if f.get("cpu_temp_c") is not None and f["cpu_temp_c"] >= CPU_HOT_C:
        out["cpu_hot"] = f"CPU at {f['cpu_temp_c']:.1f} °C (>= {CPU_HOT_C:.0f} °C: throttling)"
    if f.get("mem_available_mb") is not None and f["mem_available_mb"] < MEM_LOW_MB:
        out["memory_low"] = f"{f['mem_available_mb']:.0f} MB available (< {MEM_LOW_MB:.0f} MB)"
    return out


def percentile_ms(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile of recent latencies; None before the first one."""
    data = sorted(values)
    if not data:
        return None
    rank = min(len(data) - 1, max(0, math.ceil(q / 100.0 * len(data)) - 1))
    return round(data[rank], 2)


class ProblemTracker:
    """Turns the set of active problems into edges: (kind, raised?, detail) for each change."""

    def __init__(self) -> None:
        self.active: dict[str, str] = {}

    def update(self, problems: dict[str, str]) -> list[tuple[str, bool, str]]:
        edges = [(k, True, d) for k, d in problems.items() if k not in self.active]
        edges += [(k, False, f"cleared (was: {d})") for k, d in self.active.items() if k not in problems]
        self.active = dict(problems)
        return edges
