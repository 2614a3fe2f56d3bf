"""What the bridge tells a technician: the serial link's and the controller's figures, its
problems, a ping self-test and the serial settings it can change live. The bridge builds
these ``DiagHooks`` and hands them to ``rig.ops.diag.DiagAgent``, which knows nothing of
the bridge.

Problems are judged from the figures alone (pure), so the rules can be read — and tested —
without a daemon.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from firmware_bridge.protocol import messages as m
from rig.ops import health as h
from rig.ops.diag import Check, DiagHooks, ms_since

if TYPE_CHECKING:
    from firmware_bridge.bridge import Bridge


def bridge_hooks(bridge: "Bridge") -> DiagHooks:
    return DiagHooks(figures=lambda: bridge_figures(bridge), problems=bridge_problems,
                     selftest=lambda: bridge_selftest(bridge),
                     live={"serial.silent_after_s": None, "serial.command_timeout_s": None,
                           "serial.command_retries": None},
                     state_dir=h.state_dir())


def bridge_figures(bridge: "Bridge") -> dict[str, Any]:
    link, drift = bridge.link, bridge.link.clocksync.drift_ppm
    belt, trig = bridge.belt, bridge.trigger
    return {"serial_port": link.port, "serial_connected": link.connected,
            "serial_rejected_frames": link.rejected, "serial_lost_frames": link.lost,
            "serial_reconnects": link.reconnects, "serial_retransmits": link.retransmits,
            "serial_invalid_messages": sum(link.invalid.values()), "serial_handler_errors": link.errors,
            "serial_reader_alive": link.alive, "controller_resets": link.resets,
            "rejected_commands": sum(bridge.bus.rejected.values()),
            "controller_clock_drift_ppm": None if drift is None else round(drift, 2),
            "controller_silent": link.silent, "belt_running": belt.running if belt else None,
            "belt_speed_m_s": belt.speed_m_s if belt else None, "trigger_armed": trig.armed if trig else None,
            "firmware": link.hello.firmware if link.hello else None}


def bridge_problems(f: dict) -> dict[str, str]:
    out = {}
    if not f.get("serial_reader_alive", True):
        out["serial_reader_dead"] = "the serial reading thread has ended; restart the bridge"
    elif not f["serial_connected"]:
        out["serial_down"] = f"{f['serial_port']} is not open; reopening with backoff"
    elif f["controller_silent"]:
        out["controller_silent"] = "no heartbeat from the treadmill controller"
    return out


def bridge_selftest(bridge: "Bridge") -> list[Check]:
    t0 = time.perf_counter()
    result = bridge.link.command(m.Ping())
    ms = ms_since(t0)
    detail = f"controller answered a ping in {ms} ms ({result.tries} tries)" if result.ok \
        else f"no answer to a ping on {bridge.link.port}: {result.error}"
    return [Check("serial", result.ok, detail, ms)]
