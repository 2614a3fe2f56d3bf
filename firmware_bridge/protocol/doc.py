"""Generates ``docs/serial-protocol.md`` from the tables in code (framing constants, the
message table, error and fault codes), so the document cannot drift from the codec; a
test compares the file with ``render_markdown()``.

    python -m firmware_bridge.protocol.doc > docs/serial-protocol.md
"""
from __future__ import annotations

import dataclasses
import struct
import sys

from firmware_bridge import link
from firmware_bridge.protocol import framing, messages as m

TYPE_NAMES = {"B": "u8", "b": "i8", "H": "u16", "h": "i16", "I": "u32", "i": "i32",
              "Q": "u64", "q": "i64", "?": "bool (u8)"}

INTRO = """# Treadmill controller serial protocol (version {version})

Generated from `firmware_bridge/protocol/` by `gaitrig docs` (or
`python -m firmware_bridge.protocol.doc > docs/serial-protocol.md`); do not edit by hand.

The treadmill controller (a microcontroller) and the host (the bridge daemon,
`gaitrig bridge`) exchange binary frames over a serial line (USB CDC, 250000 baud).
"""

FRAMING = """## Framing

```
COBS( len u8 | seq u8 | type u8 | body[len] | crc16 u16 big-endian ) 0x00
```

- **COBS** (consistent overhead byte stuffing) removes every 0x00 from the frame, so 0x00
  only marks frame boundaries. A receiver that meets corruption discards bytes up to the
  next 0x00 and resumes there: one bad frame never costs the next one.
- **Senders put an extra 0x00 before each frame**, so noise on an idle line cannot merge
  with the next frame. Empty chunks (0x00 0x00) are padding, not errors.
- `len` is the body length (at most {max_body} bytes); `type` is the message type below.
- `crc16` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection,
  no final XOR) over `len | seq | type | body`, sent big-endian.
- Body fields are **little-endian**, packed without padding; `bool` is one byte (0 / 1).
- A receiver never buffers more than {max_encoded} bytes without a delimiter.

### Rejected frames

The receiver counts every rejected frame by reason (reported on MQTT as
`LinkState.rejected_frames`):

| reason | meaning |
|---|---|
{reasons}
"""

RULES = """## Sequence numbers, acknowledgement and retransmission

- Each side numbers the frames it sends with its own 8-bit `seq`, +1 per frame, wrapping
  at 256. The host counts gaps in the controller's numbers as **lost frames**
  (`LinkState.lost_frames`); a gap across a reconnect is not counted.
- Controller → host messages are not acknowledged: states are repeated (belt ~1 s,
  trigger ~1 s while armed, heartbeat ~250 ms), so a lost one is healed by the next.
  After every (re)connect the host sends STATUS_REQUEST to refresh its whole picture.
- Every host → controller command is answered by exactly one **ACK** or **ERROR** carrying
  the command's `seq` and type. The host has **one command in flight** at a time.
- With no answer within the command timeout (default 250 ms) the host **retransmits the
  identical frame (same seq)**, up to 4 times, then reports the command as timed out.
- The controller **de-duplicates**: a command with the same seq, type and body as the last
  one it executed, within 2 s, is not executed again; its stored ACK/ERROR is resent.
  The host starts its seq at a random value so that a restarted host is not taken for a
  retransmission.
- ARM and DISARM: the controller sends TRIGGER_STATE *before* the ACK, so when the ACK
  arrives the host already holds the new state (if that frame was lost, the host asks
  STATUS_REQUEST before it reports the command as done). After DISARM its `pulses_sent`
  is final. With `rate = rate_mhz / 1000` Hz, pulse k is emitted at controller clock
  `first_pulse_clock + k · clock_hz / rate`, and at disarm
  `pulses_sent = floor((disarm clock − first_pulse_clock) · rate / clock_hz) + 1`
  (0 if disarmed before the first pulse).
- Unknown command types are answered by ERROR `UNKNOWN_COMMAND`.
- A gap in the controller's sequence numbers means a state change may have been lost
  (an emergency stop in a burst of line noise): the host then sends STATUS_REQUEST at once
  (at most every {resync:g} s; a gap inside that time is answered when it ends) instead of
  waiting for the next periodic report.

## Values the host accepts

Every controller message is checked after decoding against the **accepted** column of its
table and the rules under it (ranges a treadmill and its controller can produce: belt speed
at most 8 m/s, clock rate 1 kHz … 1 GHz, clocks below 2^62, an armed train at 1 mHz … 1 kHz).
A message that fails is dropped, counted as rejected (`LinkState.rejected_frames`) and
logged once per message field; the bridge publishes nothing from it. Argument ranges of host
commands (ARM's rate) are checked by the controller, which answers ERROR `BAD_ARGUMENT`.

{misbehaving} impossible messages in a row with nothing sane between them mean the controller
misbehaves: the host logs an error and closes and reopens the line with backoff.

## Controller reset

The controller clock never runs backwards while it runs. A state or heartbeat clock more
than {behind:g} s *behind* the latest one seen means the controller restarted (watchdog,
brown-out, reflash): the host reports the event `controller_reset`, forgets its clock fit
and asks STATUS_REQUEST. A controller numbers its frames from seq 0 at boot; the gap before
a HELLO with seq 0 is not counted as lost frames. A state clock more than {ahead:g} s *ahead*
of the fitted heartbeat clock is rejected as impossible; a heartbeat that far ahead means
the controller restarted while the line was down, and counts as a reset.
If handling a message fails in an unexpected way, the host logs it, counts it, closes the
line and reopens it with backoff; the reading thread never ends before the daemon does.

## Controller silence and clock synchronisation

- No HEARTBEAT for `silent_after_s` (default 2 s) while the line is open: the host reports
  the controller **silent** (event `controller_silent`, `LinkState.controller_silent`) and
  **back** at the next heartbeat. Commands still time out on their own budget.
- The host maps controller clock ticks to its monotonic clock from HEARTBEAT samples
  (controller clock, host receive time): a line fitted over the last 240 samples (60 s), samples
  more than 2 ms above the low envelope gated out, the line placed on the minimum-latency
  side. Its slope gives the controller's drift in ppm (`LinkState.clock_drift_ppm`).
  Controller times on MQTT (`TriggerState.first_pulse_t`, every `t`) are host Unix time.
- If the serial device disappears (unplugged, EIO) the host closes it and reopens the
  same path (prefer `/dev/serial/by-id/...`) with exponential backoff.
"""


def _field_rows(cls: type[m.Message]) -> list[str]:
    rows = []
    offset = 0
    for fl in dataclasses.fields(cls):
        fmt = fl.metadata["fmt"]
        unit = fl.metadata["unit"] or "–"
        valid = fl.metadata["valid"]
        accepted = f"{valid[0]}…{valid[1]}" if valid else "any"
        rows.append(f"| {offset} | `{fl.name}` | {TYPE_NAMES[fmt]} | {unit} | {accepted} | {fl.metadata['doc']} |")
        offset += struct.calcsize("<" + fmt)
    return rows


def _message_section(cls: type[m.Message]) -> str:
    head = f"### `{cls.TYPE:#04x}` {cls.NAME} ({cls.DIRECTION}, body {cls.STRUCT.size} bytes)\n\n{cls.DOC}\n"
    rows = _field_rows(cls)
    if not rows:
        return head + "\nNo body.\n"
    table = ["| offset | field | type | unit | accepted | meaning |", "|---|---|---|---|---|---|", *rows]
    rules = "".join(f"- {rule}\n" for rule in cls.RULES)
    return head + "\n" + "\n".join(table) + "\n" + (f"\nAlso required:\n\n{rules}" if rules else "")


def _code_table(title: str, enum, meanings: dict) -> str:
    rows = [f"| {c.value} | `{c.name}` | {meanings[c]} |" for c in enum]
    return f"## {title}\n\n| code | name | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def render_markdown() -> str:
    reasons = "\n".join(f"| `{k}` | {v} |" for k, v in framing.REASONS.items())
    parts = [
        INTRO.format(version=m.PROTOCOL_VERSION),
        FRAMING.format(max_body=framing.MAX_BODY, max_encoded=framing.MAX_ENCODED, reasons=reasons),
        "## Messages\n",
        *(_message_section(c) for c in m.MESSAGES.values()),
        _code_table("Error codes (in ERROR)", m.ErrorCode, m.ERROR_MEANINGS),
        _code_table("Fault codes (in FAULT)", m.FaultCode, m.FAULT_MEANINGS),
        RULES.format(misbehaving=link.MISBEHAVING_RUN, behind=link.RESET_BEHIND_S,
                     ahead=link.MAX_AHEAD_S, resync=link.RESYNC_MIN_S),
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
