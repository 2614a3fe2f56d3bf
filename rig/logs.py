"""Logging to stderr; under systemd (JOURNAL_STREAM set) without our own timestamps,
since journald adds them."""
from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "INFO") -> None:
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)
