"""``gaitrig bridge`` and ``gaitrig sim-treadmill``."""
from __future__ import annotations

import argparse
import sys
import threading

from rig.config import BridgeConfig
from rig.daemon import add_config_args, load_role_config, stop_event_on_signals

HAND_HELP = """commands: start SPEED [RAMP] | stop | estop | release | incline PCT | fault CODE |
  noise N | bitflip N | truncate N | pause S | vanish S | reset | impossible | state | quit"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bridge", help="serial treadmill controller <-> MQTT daemon",
                       description="Puts the treadmill controller on MQTT: state, events, "
                       "commands, link health. Runs until SIGTERM/SIGINT.")
    add_config_args(p, "bridge")
    p.add_argument("--serial", metavar="PATH", help="serial device (overrides serial.port); "
                   "prefer /dev/serial/by-id/...")
    p.set_defaults(func=run_bridge)

    p = sub.add_parser("sim-treadmill", help="simulated treadmill controller on a pty",
                       description="Opens a pty that behaves as the treadmill controller and "
                       "prints its device path. Scripted with --script, else driven on stdin.",
                       epilog=HAND_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--link", metavar="PATH", help="stable symlink to the pty (default: a temp path)")
    p.add_argument("--script", metavar="SPEC", help="e.g. 'start=1,speed=1.2,ramp=1,walk=20' (seconds, m/s)")
    p.add_argument("--noise-rate", type=float, default=0.0, metavar="BYTES_PER_S",
                   help="random bytes per second between frames")
    p.add_argument("--bitflip-rate", type=float, default=0.0, metavar="P",
                   help="probability that a sent frame has one bit flipped")
    p.add_argument("--truncate-rate", type=float, default=0.0, metavar="P",
                   help="probability that a sent frame is cut short")
    p.add_argument("--drift-ppm", type=float, help="controller clock drift (default random ±40)")
    p.add_argument("--seed", type=int, help="random seed (clock offset, drift, noise)")
    p.add_argument("--trigger-line", metavar="PATH",
                   help="also drive a simulated trigger line (a file simulated cameras follow)")
    p.set_defaults(func=run_sim)


def run_bridge(args: argparse.Namespace) -> int:
    from firmware_bridge.bridge import Bridge
    config = load_role_config(BridgeConfig, args, {"serial.port": args.serial})
    Bridge(config).run(stop_event_on_signals())
    return 0


def run_sim(args: argparse.Namespace) -> int:
    from firmware_bridge.simulator import Script, TreadmillSimulator
    try:
        script = Script.parse(args.script) if args.script else None
    except ValueError as e:
        print(f"gaitrig sim-treadmill: --script: {e}", file=sys.stderr)
        return 2
    stop = stop_event_on_signals()
    sim = TreadmillSimulator(args.link, drift_ppm=args.drift_ppm, seed=args.seed,
                             noise_rate=args.noise_rate, bitflip_rate=args.bitflip_rate,
                             truncate_rate=args.truncate_rate, trigger_line=args.trigger_line).start()
    print(sim.path, flush=True)
    try:
        if script:
            sim.play(script)
        else:
            print(HAND_HELP, file=sys.stderr, flush=True)
            threading.Thread(target=_hand, args=(sim, stop), daemon=True).start()
        stop.wait()
    finally:
        sim.stop()
    return 0


def _hand(sim, stop: threading.Event) -> None:
    """Read hand commands from stdin; EOF leaves the simulator running until a signal."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            stop.set()
            return
        try:
            print(hand_command(sim, words), flush=True)
        except (ValueError, IndexError, KeyError) as e:
            print(f"? {e}\n{HAND_HELP}", flush=True)


def impossible_values(sim) -> None:
    """A controller gone mad: a HELLO at 0 Hz, a belt at 65.5 m/s, a clock at 2^64-1, an
    armed train at 0 Hz — each one a frame the bridge must refuse, count and never publish."""
    from firmware_bridge.protocol import messages as m
    now = sim.clock()
    for msg in (m.Hello(1, 0, 0, m.PROTOCOL_VERSION, 0), m.BeltStateMsg(now, True, 65_535, 0, False),
                m.Heartbeat(2**64 - 1), m.TriggerStateMsg(now, True, 0, now, 0)):
        sim.inject(msg)


def hand_command(sim, words: list[str]) -> str:
    """Execute one hand command on a simulator; returns a one-line answer."""
    cmd, args = words[0], [float(a) for a in words[1:]]
    actions = {
        "start": lambda: sim.belt_start(args[0], args[1] if len(args) > 1 else 0.0),
        "stop": sim.belt_stop, "estop": sim.estop, "release": sim.estop_release,
        "incline": lambda: sim.set_incline(args[0]), "fault": lambda: sim.fault(int(args[0])),
        "noise": lambda: sim.inject_noise(int(args[0])),
        "bitflip": lambda: sim.corrupt_next(int(args[0]) if args else 1, "bitflip"),
        "truncate": lambda: sim.corrupt_next(int(args[0]) if args else 1, "truncate"),
        "pause": lambda: sim.pause(args[0]), "vanish": lambda: sim.vanish(args[0]), "reset": sim.reset,
        "impossible": lambda: impossible_values(sim),
        "state": lambda: None,
    }
    if cmd not in actions:
        raise KeyError(f"unknown command {cmd!r}")
    actions[cmd]()
    return (f"ok {cmd}: running={sim.running} speed={sim.speed_m_s() if sim.running else 0:.2f} m/s "
            f"estop={sim.estopped} armed={sim.armed} pulses={sim.pulses_sent}")
