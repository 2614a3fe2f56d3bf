"""The tablet pages as a daemon: uvicorn serving :func:`rig.web.app.create_app`, speaking
sd_notify like every gaitrig daemon.

READY=1 goes out only once the socket listens (so ``systemctl start`` returns when the
tablet can connect), and the watchdog is fed by proof that the event loop still turns: a
heartbeat coroutine beats every second, so a hung server stops the pings and systemd
restarts it. uvicorn handles SIGTERM/SIGINT with a graceful shutdown and then re-raises the
signal to whatever handler was there before; :func:`serve` installs one that lets it return,
so the daemon ends like the others: STOPPING=1 and exit status 0.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import uvicorn

from rig.ops import notify

from rig.config import WebSettings

from .app import create_app
from .database import DatabaseUnavailable, ReadOnlyDatabase

log = logging.getLogger(__name__)
HEARTBEAT_S = 1.0
WATCHDOG_STALL_S = 10.0


class NotifyingServer(uvicorn.Server):
    """uvicorn's server, plus READY=1 once listening and a heartbeat for the watchdog."""

    def __init__(self, config: uvicorn.Config, liveness: notify.Liveness, ready_status: str):
        super().__init__(config)
        self.liveness = liveness
        self.ready_status = ready_status
        self._heartbeat_task: asyncio.Task | None = None

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self._heartbeat_task = asyncio.create_task(self._heartbeat())
            notify.ready(self.ready_status)

    async def shutdown(self, sockets=None) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        await super().shutdown(sockets)

    async def _heartbeat(self) -> None:
        while True:
            self.liveness.beat()
            await asyncio.sleep(HEARTBEAT_S)


def serve(database: Path, host: str, port: int, settings: WebSettings | None = None) -> int:
    """Serve until SIGTERM/Ctrl-C; returns the process exit code. With a certificate and key
    in ``settings`` the pages are served over HTTPS (and the log-in cookie marked Secure).
    The access log stays off: URLs can name patients' pages, and the process log keeps
    nothing of a patient."""
    settings = settings or WebSettings()
    try:
        ReadOnlyDatabase(database).check()
    except DatabaseUnavailable as e:  # keep serving: the pages say so until the coordinator creates it
        log.warning("%s", e)
    tls = settings.tls_certfile is not None
    if tls != (settings.tls_keyfile is not None):
        log.error("web.tls_certfile and web.tls_keyfile go together: give both or neither")
        return 2
    url = f"{'https' if tls else 'http'}://{host}:{port}/"
    clinic = settings.clinic_path(database)
    config = uvicorn.Config(create_app(database, clinic, settings, tls=tls), host=host, port=port, log_config=None,
                            access_log=False, proxy_headers=False, server_header=False, timeout_graceful_shutdown=5,
                            ssl_certfile=str(settings.tls_certfile) if tls else None,
                            ssl_keyfile=str(settings.tls_keyfile) if tls else None)
    liveness = notify.Liveness(stall_after_s=WATCHDOG_STALL_S)
    server = NotifyingServer(config, liveness, f"serving {url} from {database} (read-only)")
    log.info("tablet pages on %s, reading %s read-only, accounts and patients in %s", url, database, clinic)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped_by)
    try:
        with notify.Watchdog(liveness):
            server.run()
    finally:
        notify.stopping()
    return 0 if server.started else 1


def _stopped_by(signum: int, frame) -> None:
    """Where uvicorn's re-raised signal lands after its graceful shutdown: just note it."""
    log.info("signal %s: stopped", signal.Signals(signum).name)
