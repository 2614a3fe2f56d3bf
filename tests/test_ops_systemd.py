"""The systemd units pass a real ``systemd-analyze verify`` (and an offline security
review), say what the rig needs, and the example configs validate against rig.config."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rig.config import BridgeConfig, CoordinatorConfig, NodeConfig, load_config

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
INSTALLED_EXE = "/opt/gaitrig/bin/gaitrig"
DAEMON_UNITS = {"coordinator": "gaitrig-coordinator.service", "bridge": "gaitrig-bridge.service",
                "node": "gaitrig-node@.service"}
WEB_UNIT = "gaitrig-web.service"  # serves the coordinator's database: its config, not a role of its own
ALL_UNITS = list(DAEMON_UNITS.values()) + ["gaitrig-camera-trigger.service", WEB_UNIT]
MAX_EXPOSURE = 3.0  # systemd-analyze security: 0 locked down .. 10 exposed; ours are ~1.4-2.1


def _analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is required in CI (apt install systemd)")
        pytest.skip("systemd-analyze not installed")
    return exe


def _gaitrig_exe() -> str:
    exe = Path(sys.executable).with_name("gaitrig")
    found = str(exe) if exe.exists() else shutil.which("gaitrig")
    assert found, "the gaitrig console script is not installed (pip install -e .)"
    return found


@pytest.fixture(scope="module")
def unit_dir(tmp_path_factory) -> Path:
    """The units with ExecStart pointing at this venv's gaitrig: verify insists the
    binary exists and is executable, which /opt/gaitrig/bin/gaitrig is not here."""
    d = tmp_path_factory.mktemp("units")
    exe = _gaitrig_exe()
    for name in ALL_UNITS:
        (d / name).write_text((SYSTEMD / name).read_text().replace(INSTALLED_EXE, exe))
    return d


def _as_loaded(name: str) -> str:
    return name.replace("@.service", "@left.service")  # a template is verified as an instance


def _unit(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("name", ALL_UNITS)
def test_unit_passes_systemd_analyze_verify(unit_dir, name):
    res = subprocess.run([_analyze(), "verify", "--man=no", f"./{_as_loaded(name)}"], cwd=unit_dir,
                         capture_output=True, text=True, timeout=30)
    # verify exits 0 on unknown keys and unparsable values, so its warnings count too
    ours = [line for line in res.stderr.splitlines() if "gaitrig" in line]
    assert res.returncode == 0 and not ours, res.stderr


def test_verify_does_catch_a_broken_unit(unit_dir):
    bad = unit_dir / "gaitrig-broken.service"
    bad.write_text((unit_dir / DAEMON_UNITS["bridge"]).read_text().replace("Restart=on-failure", "Restart=sometimes"))
    res = subprocess.run([_analyze(), "verify", "--man=no", f"./{bad.name}"], cwd=unit_dir,
                         capture_output=True, text=True, timeout=30)
    bad.unlink()
    assert "restart specifier" in res.stderr


@pytest.mark.parametrize("name", ALL_UNITS)
def test_unit_hardening_holds(unit_dir, name):
    res = subprocess.run([_analyze(), "security", "--offline=yes", "--no-pager", f"./{_as_loaded(name)}"],
                         cwd=unit_dir, capture_output=True, text=True, timeout=30)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", res.stdout + res.stderr)
    assert m, res.stdout + res.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE


@pytest.mark.parametrize("role", DAEMON_UNITS)
def test_daemon_units_are_watched_restarted_and_unprivileged(role):
    u = _unit(DAEMON_UNITS[role])
    assert u["Type"] == ["notify"] and u["NotifyAccess"] == ["main"] and u["Restart"] == ["on-failure"]
    assert u["WatchdogSec"] and u["RestartSec"] and u["User"] == ["gaitrig"] and u["StateDirectory"] == ["gaitrig"]
    assert {"network-online.target", "mosquitto.service"} <= set(" ".join(u["After"]).split())
    assert u["Wants"] == ["network-online.target"]
    assert u["ExecStart"][0].startswith(f"{INSTALLED_EXE} {role} --config /etc/gaitrig/{role}.toml")
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert u[key] == ["yes"], key
    assert u["ProtectSystem"] == ["strict"]


def test_devices_each_daemon_needs():
    node, bridge = _unit(DAEMON_UNITS["node"]), _unit(DAEMON_UNITS["bridge"])
    assert node["SupplementaryGroups"] == ["video"] and "PrivateDevices" not in node  # libcamera, /dev/dma_heap
    assert "ProtectClock" not in node and "ProtectClock" not in bridge  # implies a closing DeviceAllow=
    assert "AF_NETLINK" in node["RestrictAddressFamilies"][0]
    assert bridge["SupplementaryGroups"] == ["dialout"] and "PrivateDevices" not in bridge
    assert "gaitrig-camera-trigger.service" in node["Requires"][0]
    assert "gaitrig-camera-trigger.service" in " ".join(node["After"])
    assert node["ExecStart"][0].endswith("--view %i")
    trigger = _unit("gaitrig-camera-trigger.service")
    assert trigger["Type"] == ["oneshot"] and "User" not in trigger  # root: writes /sys/module
    assert "/sys/module/imx296/parameters/trigger_mode" in trigger["ExecStart"][0]


def test_web_unit_is_watched_restarted_unprivileged_and_reads_the_coordinators_database():
    u = _unit(WEB_UNIT)
    assert u["Type"] == ["notify"] and u["NotifyAccess"] == ["main"] and u["Restart"] == ["on-failure"]
    assert u["WatchdogSec"] and u["User"] == ["gaitrig"] and u["StateDirectory"] == ["gaitrig"]
    assert u["ExecStart"][0].startswith(f"{INSTALLED_EXE} web --config /etc/gaitrig/coordinator.toml")
    assert "gaitrig-coordinator.service" in " ".join(u["After"]) and "Requires" not in u  # reports outlive a restart
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert u[key] == ["yes"], key
    assert u["ProtectSystem"] == ["strict"] and u["CapabilityBoundingSet"] == [""]


@pytest.mark.parametrize("model,name", [(CoordinatorConfig, "coordinator"), (BridgeConfig, "bridge"),
                                        (NodeConfig, "node")])
def test_example_configs_validate(model, name):
    config = load_config(model, SYSTEMD / f"{name}.toml")
    assert config.mqtt.username and config.mqtt.password_file == Path("/etc/gaitrig/mqtt.password")
    assert config.mqtt.username == (f"node-{config.view}" if name == "node" else name)
