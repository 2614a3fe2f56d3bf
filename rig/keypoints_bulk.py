"""Frame lines of a ``gaitrig-keypoints/1`` file parsed in bulk, with numpy, in any JSON
spelling (spaces, key order, CRLF).

Why: a 10-minute four-view 120 fps session is 290 000 lines and 38 million numbers.
``json.loads`` per line, ``np.fromstring`` and numpy's string-to-float cast all spend
~250 ns per number (≈ 10 s of the ≤ 10 s budget for ``gaitrig analyze``); Python JSON
libraries spend as long building float objects. Here each line is checked whole and the
numbers are decoded eight bytes at a time:

* **Shape.** Every run of number characters (``0-9 . - + e E``) becomes ``#``, JSON
  whitespace outside it is dropped, and what is left of each line must be one of the twelve
  frame skeletons (keys ``i``, ``t``, ``lm`` in any order; ``lm`` null or 33 rows of 4) —
  so extra keys, wrong row counts, strings, ``NaN``/``Infinity``, ``true`` all fail here.
* **Numbers.** A token of up to 8 characters (``-1234.56``) is loaded as one little-endian
  64-bit word; the dot is squeezed out and the eight digits combined with the SWAR trick
  (Lemire, "Faster integer parsing", 2018). Integer mantissa < 10⁸ divided by an exact
  power of ten is correctly rounded, so every value equals Python's ``float(token)``.
  The JSON grammar (no ``01``, ``1.``, ``.5``, ``+1``) is checked on the same words; longer
  tokens and exponents are few and go through ``float`` after a grammar match.

Anything this parser does not vouch for returns None and the line-by-line reader in
:mod:`rig.keypoints` judges the file and names the defect. Pure: bytes in, arrays out.
"""
from __future__ import annotations

import itertools
import re

import numpy as np

N_LANDMARKS = 33
_LM_VALUES = N_LANDMARKS * 4
_CHUNK_BYTES = 64 << 10  # lines parsed 64 kB at a time: numpy temporaries stay in cache and under
# glibc malloc's mmap threshold (4 MB chunks spent as long in page faults as in parsing)

_NUMBER_CHAR = np.zeros(256, bool)
_NUMBER_CHAR[list(b"0123456789+-.eE")] = True
_BLANK = np.zeros(256, bool)  # JSON whitespace within a line (the line feed separates lines)
_BLANK[list(b" \t\r")] = True
_JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

# little-endian words: byte 0 is the lowest; a token ends at byte 7 of the word loaded for it
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], np.uint64)  # bytes 0..k-1
_ASCII_ZEROS = np.uint64(0x3030303030303030)
_POW10 = 10.0 ** np.arange(8)


def _skeletons() -> dict[bytes, tuple[int, int, int, int]]:
    """skeleton -> (tokens, token of i, token of t, first token of lm or -1); b"" is a blank line."""
    rows = "[" + ",".join(["[#,#,#,#]"] * N_LANDMARKS) + "]"
    out = {b"": (0, 0, 0, -1)}
    for lm, n_lm in ((rows, _LM_VALUES), ("null", 0)):
        spelled = {"i": ('"i":#', 1), "t": ('"t":#', 1), "lm": ('"lm":' + lm, n_lm)}
        for order in itertools.permutations(("i", "t", "lm")):
            first, at = {}, 0
            for key in order:
                first[key] = at
                at += spelled[key][1]
            text = "{" + ",".join(spelled[k][0] for k in order) + "}"
            out[text.encode()] = (at, first["i"], first["t"], first["lm"] if n_lm else -1)
    return out


_SKELETON = _skeletons()
_SKELETON_ID = {s: k for k, s in enumerate(_SKELETON)}
_KIND = np.array(list(_SKELETON.values()), np.int64)  # columns: tokens, i, t, lm


def parse_frames(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(index int64 (n,), t_s (n,), lm (n, 33, 4) with NaN rows for ``"lm": null``) from the
    frame lines of a file (everything after the header line), or None when any line is not
    a plain frame (the line reader then names the defect)."""
    buf = np.frombuffer(b" " * 8 + data + b"\n", np.uint8)  # 8 bytes of room before the first token
    words = np.ndarray((buf.size - 7,), "<u8", buffer=buf, strides=(1,))  # the 8 bytes from each offset
    most = data.count(b"\n") + 1  # frames at most: one a line
    index, t_s = np.empty(most), np.empty(most)
    lm = np.empty((most, _LM_VALUES))
    n, a = 0, 8
    while a < buf.size:
        z = data.find(b"\n", a - 8 + _CHUNK_BYTES)
        z = buf.size if z < 0 else z + 9  # one past the line feed, in buf's offsets
        got = _parse_chunk(buf, words, a, z, data[a - 8:z - 8], index[n:], t_s[n:], lm[n:])
        if got is None:
            return None
        n, a = n + got, z
    if n == 0:
        return None
    index, t_s, lm = index[:n], t_s[:n], lm[:n]
    if not np.all((index == np.round(index)) & (np.abs(index) < 2**53)):
        return None  # fractions, or too large for a float to hold exactly: the line parser judges
    return index.astype(np.int64), t_s, lm.reshape(n, N_LANDMARKS, 4)


def _parse_chunk(buf: np.ndarray, words: np.ndarray, a: int, z: int, text: bytes,
                 index: np.ndarray, t_s: np.ndarray, lm: np.ndarray) -> int | None:
    """Whole lines buf[a:z] (ending in a line feed) into the heads of index, t_s and lm
    (n, 132); returns how many frames, or None when a line is not a frame."""
    c = buf[a:z]  # text is the same bytes, for fast searches
    if b"e" in text or b"E" in text or b"+" in text:
        is_num = _NUMBER_CHAR[c]
    else:  # the usual case: '-' '.' '/' and digits are one range ('/' then fails as a number)
        is_num = (c - np.uint8(ord("-"))) <= np.uint8(ord("9") - ord("-"))
    edges = np.flatnonzero(np.diff(is_num.view(np.int8)))
    if is_num[0] or edges.size % 2:
        return None  # a line never starts with a number, and the chunk ends with a line feed
    starts, ends = edges[0::2] + 1, edges[1::2] + 1
    quotes = np.flatnonzero(c == ord('"'))
    if quotes.size % 2 or not np.isin(quotes[1::2] - quotes[0::2], (2, 3)).all():
        return None  # keys only, "i" "t" "lm", with nothing (no blank) inside the quotes
    keep = ~is_num
    keep[starts] = True
    if b" " in text or b"\t" in text or b"\r" in text:
        keep &= ~_BLANK[c]
    marked = c.copy()
    marked[starts] = ord("#")
    skeleton = marked[keep].tobytes().split(b"\n")[:-1]
    kind = np.fromiter((_SKELETON_ID.get(s, -1) for s in skeleton), np.int64, len(skeleton))
    if kind.size == 0 or kind.min() < 0:
        return None
    values = _numbers(buf, words, starts + a, ends + a)
    if values is None:
        return None
    n_tokens, at_i, at_t, at_lm = _KIND[kind].T
    first = np.cumsum(n_tokens) - n_tokens
    frame = n_tokens > 0  # blank lines are no frames
    n = int(frame.sum())
    first, at_i, at_t, at_lm = first[frame], at_i[frame], at_t[frame], at_lm[frame]
    np.take(values, first + at_i, out=index[:n])
    np.take(values, first + at_t, out=t_s[:n])
    found = at_lm >= 0
    if found.all():
        np.take(values, (first + at_lm)[:, None] + np.arange(_LM_VALUES), out=lm[:n])
    else:
        lm[:n][found] = values[(first + at_lm)[found][:, None] + np.arange(_LM_VALUES)]
        lm[:n][~found] = np.nan
    return n


def _numbers(buf: np.ndarray, words: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """float(token) for each token buf[starts:ends] (runs of number characters), or None when
    one is not a JSON number."""
    length = ends - starts
    neg = buf[starts] == ord("-")
    lead = np.clip(8 - length, 0, 8) + neg  # bytes of the word before the first digit
    lead_mask = _LOW_BYTES[np.minimum(lead, 8)]
    w = (words[ends - 8] & ~lead_mask) | (_ASCII_ZEROS & lead_mask)  # leading bytes become '0'
    e = w ^ np.uint64(0x2E2E2E2E2E2E2E2E)  # zero where the byte is '.'
    low7 = np.uint64(0x7F7F7F7F7F7F7F7F)
    dots = ~(((e & low7) + low7) | e | low7)  # bit 7 of each '.' byte
    n_dots = np.bitwise_count(dots)
    dot = (np.bitwise_count(dots - np.uint64(1)).astype(np.int64) - 7) // 8  # its byte (when one)
    has_dot = n_dots == 1
    dot_c = np.where(has_dot, dot, 0)
    squeezed = (w & ~_LOW_BYTES[dot_c + 1]) | ((w & _LOW_BYTES[dot_c]) << np.uint64(8)) | np.uint64(0x30)
    w = np.where(has_dot, squeezed, w)
    digits_only = ((w & np.uint64(0xF0F0F0F0F0F0F0F0))
                   | (((w + np.uint64(0x0606060606060606)) & np.uint64(0xF0F0F0F0F0F0F0F0)) >> np.uint64(4))
                   ) == np.uint64(0x3333333333333333)
    lead_zero = buf[starts + neg] == ord("0")
    after_lead = buf[np.minimum(starts + neg + 1, buf.size - 1)]
    ok = ((length <= 8) & (n_dots <= 1) & digits_only & (length > neg)
          & ~(has_dot & ((dot <= lead) | (dot >= 7)))  # a digit on each side of the dot
          & ~(lead_zero & (starts + neg + 1 < ends) & (after_lead != ord("."))))  # no 01, 00.5
    v = w - _ASCII_ZEROS
    v = v * np.uint64(10) + (v >> np.uint64(8))
    byte02 = np.uint64(0x000000FF000000FF)
    v = ((v & byte02) * np.uint64(100 + (1000000 << 32))
         + ((v >> np.uint64(16)) & byte02) * np.uint64(1 + (10000 << 32))) >> np.uint64(32)
    out = (v & np.uint64(0xFFFFFFFF)).astype(np.float64) / _POW10[np.where(has_dot, 7 - dot_c, 0)]
    np.negative(out, out=out, where=neg)
    for k in np.flatnonzero(~ok):  # exponents, long tokens, or not numbers at all
        text = buf[starts[k]:ends[k]].tobytes()
        if not _JSON_NUMBER.fullmatch(text):
            return None
        out[k] = float(text)
    return out
