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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (its own browser builds are never
    downloaded); skipped without it unless under CI."""
    import os
    from pathlib import Path
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshot_dir():
    """Where the tests put tablet-size screenshots to look at (not committed)."""
    import os
    from pathlib import Path
    d = Path(os.environ.get("GAITRIG_TEST_OUTPUT", Path(__file__).parent / "output")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d
