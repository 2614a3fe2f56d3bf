"""Shared fixtures: a real Mosquitto broker on a free port, started and stopped by the tests."""
from __future__ import annotations

import pytest

from rig.sim.broker import LocalBroker


@pytest.fixture
def broker(tmp_path):
    b = LocalBroker(tmp_path).start()
    yield b
    b.stop()
