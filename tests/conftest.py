"""Shared fixtures: a real Mosquitto broker on a free port, started and stopped by the tests."""
from __future__ import annotations

import pytest

from rig.sim.broker import LocalBroker


@pytest.fixture
def broker(tmp_path):
    b = LocalBroker(tmp_path).start()
    yield b
    b.stop()


def assets_or_skip(names):
    """The real asset cache; skip without it unless under CI, where `make setup` fetched it."""
    import os

    from edge_models import fetch
    bad = [s for s in fetch.status(names) if s.state != "ok"]
    if bad:
        msg = f"assets not cached ({', '.join(s.asset.name for s in bad)}): run `gaitrig models fetch`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return fetch.cache_dir()
