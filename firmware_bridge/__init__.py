"""The treadmill controller on the rig: the host side of its serial protocol, a software
simulator of the controller, and the bridge daemon that puts it on MQTT.

Layout (after Klipper's serialhdl/msgproto/clocksync — one concern per small file):

- ``protocol/framing.py``   COBS frames with length, seq and CRC-16; streaming decoder
- ``protocol/messages.py``  the message table: types, layouts, units, error/fault codes
- ``protocol/clocksync.py`` controller clock → host time from heartbeats
- ``protocol/doc.py``       ``docs/serial-protocol.md`` generated from the tables
- ``link.py``               pyserial link: commands, retransmits, reconnects, silence
- ``simulator.py``          ``TreadmillSimulator`` on a pty, with fault injection
- ``bridge.py``             ``Bridge``: serial ↔ MQTT daemon
- ``cli.py``                ``gaitrig bridge`` and ``gaitrig sim-treadmill``

Everything under ``protocol/`` is pure (no I/O) so it is tested exhaustively and fast.
"""
