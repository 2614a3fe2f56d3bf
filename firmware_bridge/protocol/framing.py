"""Frames on the serial line: pure encoding and a streaming, self-resynchronising decoder.

Wire format of one frame::

    COBS( len u8 | seq u8 | type u8 | body[len] | crc16 u16 big-endian ) 0x00

COBS removes every 0x00 from the frame, so 0x00 only ever marks a frame boundary: after
any corruption the decoder resumes at the next 0x00 and loses at most the frame it was in.
The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over len|seq|type|body. Senders
put an extra 0x00 *before* each frame so line noise cannot merge with the frame after it;
empty chunks between delimiters are ignored.
"""
from __future__ import annotations

import binascii
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from cobs import cobs

DELIMITER = b"\x00"
HEADER_SIZE = 3  # len, seq, type
CRC_SIZE = 2
MAX_BODY = 64
# COBS adds one byte per 254 plus one; the decoder never buffers more than this.
MAX_ENCODED = HEADER_SIZE + MAX_BODY + CRC_SIZE + 2

# Rejection reasons, also the keys of FrameDecoder.rejected.
BAD_COBS = "bad_cobs"
TOO_SHORT = "too_short"
BAD_LENGTH = "bad_length"
BAD_CRC = "bad_crc"
TOO_LONG = "too_long"
UNKNOWN_TYPE = "unknown_type"
BAD_BODY_SIZE = "bad_body_size"
REASONS = {
    BAD_COBS: "the bytes between two delimiters are not valid COBS",
    TOO_SHORT: "fewer bytes than header and CRC",
    BAD_LENGTH: "the len byte does not match the number of body bytes",
    BAD_CRC: "the CRC-16 does not match",
    TOO_LONG: f"more than {MAX_ENCODED} bytes without a delimiter (noise); skipped to the next",
    UNKNOWN_TYPE: "a message type the receiver does not know",
    BAD_BODY_SIZE: "the body size does not match the message type's layout",
}


class FrameError(ValueError):
    """A frame that cannot be built (body too long, field out of range)."""


@dataclass(frozen=True)
class Frame:
    seq: int
    type: int
    body: bytes


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(seq: int, msg_type: int, body: bytes = b"") -> bytes:
    """One frame ready for the wire, ending in the 0x00 delimiter."""
    if len(body) > MAX_BODY:
        raise FrameError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    if not (0 <= seq <= 255 and 0 <= msg_type <= 255):
        raise FrameError(f"seq {seq} and type {msg_type} must fit in a byte")
    raw = bytes((len(body), seq, msg_type)) + body
    raw += crc16(raw).to_bytes(2, "big")
    return cobs.encode(raw) + DELIMITER


def parse_frame(chunk: bytes, body_sizes: Mapping[int, int] | None = None) -> Frame | str:
    """Decode the bytes between two delimiters: a Frame, or the rejection reason."""
    try:
        raw = cobs.decode(chunk)
    except cobs.DecodeError:
        return BAD_COBS
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        return TOO_SHORT
    if crc16(raw[:-CRC_SIZE]) != int.from_bytes(raw[-CRC_SIZE:], "big"):
        return BAD_CRC
    length, seq, msg_type = raw[0], raw[1], raw[2]
    body = raw[HEADER_SIZE:-CRC_SIZE]
    if length != len(body):
        return BAD_LENGTH
    if body_sizes is not None:
        if msg_type not in body_sizes:
            return UNKNOWN_TYPE
        if body_sizes[msg_type] != len(body):
            return BAD_BODY_SIZE
    return Frame(seq, msg_type, body)


class SequenceTracker:
    """Counts frames lost in transit from gaps in the sender's 8-bit sequence numbers."""

    def __init__(self) -> None:
        self.lost = 0
        self._expected: int | None = None

    def see(self, seq: int, restart: bool = False) -> int:
        """Record a received seq; returns how many frames were skipped before it.
        ``restart``: the sender says it numbers afresh here (a boot), so no gap is counted."""
        gap = 0 if self._expected is None or restart else (seq - self._expected) & 0xFF
        self.lost += gap
        self._expected = (seq + 1) & 0xFF
        return gap

    def reset(self) -> None:
        """Forget the expected seq (a new connection: the gap across it is not a loss)."""
        self._expected = None


class FrameDecoder:
    """Streaming decoder: ``feed(bytes) -> [Frame]``. Never raises on bad input; every
    rejection is counted in ``rejected[reason]`` and decoding resumes at the next 0x00.
    ``body_sizes`` (type -> body length), when given, also rejects unknown types and
    wrongly sized bodies. Memory is bounded by MAX_ENCODED whatever arrives.
    ``restart_types``: a frame of one of these types with seq 0 starts the sender's numbering
    afresh (its boot message), so the gap before it is not counted as lost."""

    def __init__(self, body_sizes: Mapping[int, int] | None = None, track_sequence: bool = True,
                 restart_types: frozenset[int] = frozenset()):
        self.body_sizes = body_sizes
        self.restart_types = restart_types
        self.rejected: Counter[str] = Counter()
        self.frames = 0
        self.sequence = SequenceTracker() if track_sequence else None
        self._buf = bytearray()
        self._skipping = False  # inside an over-long run: drop until the next delimiter

    @property
    def lost(self) -> int:
        return self.sequence.lost if self.sequence else 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def reset(self) -> None:
        """Drop any partial frame and the expected seq; counters are kept."""
        self._buf.clear()
        self._skipping = False
        if self.sequence:
            self.sequence.reset()

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        *complete, tail = bytes(data).split(DELIMITER)
        for part in complete:
            frame = self._finish(part)
            if frame is not None:
                frames.append(frame)
        self._append(tail)
        return frames

    def _finish(self, part: bytes) -> Frame | None:
        if self._skipping:
            self._skipping = False
            return None
        chunk = bytes(self._buf) + part if self._buf else part
        self._buf.clear()
        if not chunk:
            return None  # back-to-back delimiters: padding, not an error
        if len(chunk) > MAX_ENCODED:
            self.rejected[TOO_LONG] += 1
            return None
        return self._accept(parse_frame(chunk, self.body_sizes))

    def _accept(self, result: Frame | str) -> Frame | None:
        if isinstance(result, str):
            self.rejected[result] += 1
            return None
        self.frames += 1
        if self.sequence:
            self.sequence.see(result.seq, result.seq == 0 and result.type in self.restart_types)
        return result

    def _append(self, tail: bytes) -> None:
        if self._skipping:
            return
        if len(self._buf) + len(tail) > MAX_ENCODED:
            self._buf.clear()
            self._skipping = True
            self.rejected[TOO_LONG] += 1
            return
        self._buf += tail
