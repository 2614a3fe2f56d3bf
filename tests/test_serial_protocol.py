"""The serial codec, pure: message round trips, framing, a corrupted-byte storm, and the
protocol document kept in step with the code."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from firmware_bridge.protocol import framing, messages as m
from firmware_bridge.protocol.doc import render_markdown
from firmware_bridge.protocol.framing import Frame, FrameDecoder, encode_frame

DOC = Path(__file__).resolve().parents[1] / "docs" / "serial-protocol.md"
EXAMPLES = [
    m.Hello(1, 2, 3, m.PROTOCOL_VERSION, 1_000_000),
    m.BeltStateMsg(2**64 - 1, True, 65535, -150, True),
    m.TriggerStateMsg(123456789012, True, 60000, 123456700000, 4_000_000_000),
    m.Heartbeat(42),
    m.Ack(255, 0x82),
    m.Error(7, 0x82, m.ErrorCode.ALREADY_ARMED),
    m.Fault(99, m.FaultCode.WATCHDOG_RESET),
    m.Ping(), m.Arm(60000), m.Disarm(), m.StatusRequest(),
]


def wire(seq: int, msg: m.Message) -> bytes:
    return framing.DELIMITER + encode_frame(seq, *m.encode(msg))


def test_every_message_type_has_an_example():
    assert {type(e) for e in EXAMPLES} == set(m.MESSAGES.values())


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda e: e.NAME)
def test_message_round_trip_through_a_frame(msg):
    frames = FrameDecoder({**m.CONTROLLER_BODY_SIZES, **m.HOST_BODY_SIZES}).feed(wire(9, msg))
    assert len(frames) == 1 and frames[0].seq == 9
    assert m.decode(frames[0].type, frames[0].body) == msg


def test_field_out_of_range_and_wrong_body_are_errors():
    with pytest.raises(m.MessageError, match="ARM"):
        m.encode(m.Arm(-1))
    with pytest.raises(m.MessageError, match="HEARTBEAT: body is 3 bytes, expected 8"):
        m.decode(m.Heartbeat.TYPE, b"abc")
    with pytest.raises(m.MessageError, match="unknown message type 0x7f"):
        m.decode(0x7F, b"")
    with pytest.raises(framing.FrameError):
        encode_frame(0, 1, bytes(framing.MAX_BODY + 1))


def test_codes_have_meanings():
    assert m.describe_error(4).startswith("ALREADY_ARMED: ")
    assert m.describe_fault(1).startswith("MOTOR_OVERCURRENT: ")
    assert m.describe_error(200) == "error code 200"


def test_frame_layout_is_cobs_of_len_seq_type_body_crc_big_endian():
    raw = bytes((2, 5, 0x05, 0xAA, 0xBB))
    crc = framing.crc16(raw)
    assert crc == __import__("binascii").crc_hqx(raw, 0xFFFF)
    assert encode_frame(5, 0x05, b"\xaa\xbb") == framing.cobs.encode(raw + crc.to_bytes(2, "big")) + b"\x00"
    assert 0 not in encode_frame(0, 0, bytes(10))[:-1]


def test_frames_split_anywhere_are_reassembled():
    data = b"".join(wire(i, m.Heartbeat(i)) for i in range(50))
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    rng = random.Random(3)
    frames, i = [], 0
    while i < len(data):
        n = rng.randint(1, 9)
        frames += dec.feed(data[i:i + n])
        i += n
    assert [m.decode(f.type, f.body).clock for f in frames] == list(range(50))
    assert dec.rejected_total == 0 and dec.lost == 0


def test_bit_flips_and_truncations_are_rejected_and_decoding_resumes():
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    rng = random.Random(5)
    out = []
    for i in range(200):
        frame = encode_frame(i % 256, *m.encode(m.Heartbeat(i)))
        if i % 3 == 1:  # one bit flipped
            j = rng.randrange(len(frame) - 1)
            frame = frame[:j] + bytes([frame[j] ^ (1 << rng.randrange(8))]) + frame[j + 1:]
        elif i % 3 == 2:  # cut short, delimiter lost too
            frame = frame[:rng.randrange(1, len(frame) - 1)]
        out += dec.feed(b"\x00" + frame)
    assert [m.decode(f.type, f.body).clock for f in out] == list(range(0, 200, 3))
    assert dec.rejected_total >= 200 - len(out)  # a flip to 0x00 splits a frame in two rejects
    assert set(dec.rejected) <= {"bad_cobs", "bad_crc", "too_short", "bad_length"}
    assert dec.lost == 2 * 66  # every corrupted frame is a gap in the sequence


def test_sequence_gaps_counted_with_wraparound_and_reset():
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    seqs = [250, 251, 254, 255, 0, 3]  # 2 lost before 254, 2 before 3
    for s in seqs:
        dec.feed(wire(s, m.Heartbeat(s)))
    assert dec.lost == 4
    dec.reset()  # a new connection: no gap across it
    dec.feed(wire(100, m.Heartbeat(1)))
    assert dec.lost == 4


def test_unknown_type_and_wrong_body_size_counted_separately():
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    dec.feed(b"\x00" + encode_frame(1, 0x7F, b"") + b"\x00" + encode_frame(2, m.Heartbeat.TYPE, b"123"))
    assert dec.rejected == {"unknown_type": 1, "bad_body_size": 1}


def test_garbage_without_delimiter_keeps_memory_bounded():
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    junk = bytes(range(1, 256)) * 400  # 102,000 bytes, no 0x00
    for i in range(0, len(junk), 1000):
        dec.feed(junk[i:i + 1000])
        assert len(dec._buf) <= framing.MAX_ENCODED
    assert dec.rejected == {"too_long": 1}
    assert len(dec.feed(wire(1, m.Heartbeat(7)))) == 1  # and the next frame is fine


def test_corrupted_byte_storm_every_valid_frame_decoded_exactly():
    """≥ 100,000 random bytes between 2,000 valid frames, fed in random chunk sizes."""
    rng = random.Random(2024)
    sent: list[Frame] = []
    stream = bytearray()
    noise = 0
    for i in range(2000):
        n = rng.choice((0, 10, 50, 100, 200))
        stream += rng.randbytes(n)
        noise += n
        msg = rng.choice(EXAMPLES[:7])
        msg = dataclasses.replace(msg, clock=i) if hasattr(msg, "clock") else msg
        type_id, body = m.encode(msg)
        sent.append(Frame(i % 256, type_id, body))
        stream += wire(i % 256, msg)
    assert noise >= 100_000
    dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
    got: list[Frame] = []
    pos = 0
    while pos < len(stream):
        n = rng.randint(1, 4096)
        got += dec.feed(bytes(stream[pos:pos + n]))
        pos += n
    assert got == sent
    assert dec.frames == 2000 and dec.lost == 0
    assert dec.rejected_total > 100
    assert set(dec.rejected) <= set(framing.REASONS)


def test_protocol_document_is_generated_from_the_code():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/serial-protocol.md is out of date: run `gaitrig docs` "
        "(or python -m firmware_bridge.protocol.doc > docs/serial-protocol.md)")


def test_document_names_every_message_field_and_code():
    text = render_markdown()
    for cls in m.MESSAGES.values():
        assert cls.NAME in text
        for fl in dataclasses.fields(cls):
            assert f"`{fl.name}`" in text
    for code in [*m.ErrorCode, *m.FaultCode]:
        assert f"`{code.name}`" in text
