"""The serial protocol to the treadmill controller, pure: framing, messages, clock sync
and the generated document. No I/O here; ``firmware_bridge.link`` does the line."""
