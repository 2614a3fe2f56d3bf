"""The live walk page (``/live``) and its event stream (``/live/events``).

The stream (server-sent events, which browsers reconnect by themselves) sends the panel as
rendered HTML whenever it changes — ``event: panel`` — polling the database every
``POLL_S``; when the session it has been showing closes and its analysis is stored it sends
``event: done`` with the report's address, and the page's small script goes there. A stream
lasts at most ``MAX_STREAM_S`` (the browser reconnects), and ends when the tablet goes away.
Without scripts the page still reloads itself every few seconds.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from rig.clinic.model import Permission

from .auth import guarded
from .context import Web
from .database import LiveRows
from .live import facing_of, live_view
from .live_strides import SessionStrides

POLL_S = 0.5
MAX_STREAM_S = 300.0
FALLBACK_REFRESH_S = 5


def routes(web: Web) -> list[Route]:
    tally_lock = threading.Lock()
    tally: dict[int, SessionStrides] = {}  # the session being recorded -> its stride tally

    def strides(session_id: int, rows: LiveRows) -> tuple[dict[str, int] | None, str | None]:
        """Strides so far from a side camera, shared by every tablet watching."""
        view = next((v for v in ("left", "right") if v in rows.latest and facing_of(rows, v)), None)
        if view is None:
            return None, None
        with tally_lock:
            if session_id not in tally:
                tally.clear()  # only the session being recorded is counted
                tally[session_id] = SessionStrides(session_id, view, facing_of(rows, view))
            return tally[session_id].catch_up(web.db), tally[session_id].view

    def panel_html(watched: int | None) -> tuple[str, int | None, str | None]:
        """(panel HTML, the session now recording, the report to go to once ``watched`` is done)."""
        session = web.db.open_session()
        if session is None:
            if watched is not None:
                record = web.db.session(watched)
                if record is not None and record.stored is not None:
                    return "", None, f"/sessions/{watched}"
            return web.fragment("live_panel.html", live=None, closing=watched is not None), watched, None
        web.claim_pending()
        assignment = web.records.assignments([session.id]).get(session.id)
        patient = web.records.patient(assignment.patient_id) if assignment else None
        rows = web.db.live(session.id)
        counts, counted_from = strides(session.id, rows)
        view = live_view(session, rows, strides=counts, strides_view=counted_from)
        return web.fragment("live_panel.html", live=view, assignment=assignment, patient=patient), session.id, None

    def live_page(request: Request) -> Response:
        html, _, _ = panel_html(None)
        return web.page(request, "live.html", panel=html, refresh_s=None, fallback_s=FALLBACK_REFRESH_S)

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            watched, last, started = None, None, time.monotonic()
            yield "retry: 2000\n\n"
            while time.monotonic() - started < MAX_STREAM_S and not await request.is_disconnected():
                html, watched, done = await run_in_threadpool(panel_html, watched)
                if done:
                    yield f"event: done\ndata: {json.dumps(done)}\n\n"
                    return
                if html != last:
                    yield f"event: panel\ndata: {json.dumps(html)}\n\n"
                    last = html
                await asyncio.sleep(POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return [Route("/live", guarded(Permission.CLINICAL, live_page)),
            Route("/live/events", guarded(Permission.CLINICAL, events))]
