"""The tablet pages as a Starlette app: server-rendered HTML, inline SVG charts, a JSON API.

Routes: ``/`` sessions, ``/sessions/{id}`` a report, ``/compare?a=ID&b=ID`` two conditions,
``/api/sessions`` and ``/api/sessions/{id}`` JSON for other tools, ``/static/…`` the style
sheet. Everything reads the coordinator's database read-only (:mod:`rig.web.database`);
there is no route that writes. Unknown sessions and routes get a 404 page (JSON under
``/api``), a database that cannot be read a 503 page — never a traceback.
"""
from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import formatting
from .api import listing_json, record_json
from .charts import legend_swatch
from .comparison import METHOD, comparison_rows
from .database import DatabaseUnavailable, ReadOnlyDatabase, SessionRecord
from .report_view import report_view

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
LIST_PAGE_SIZE = 50
REFRESH_WHILE_RECORDING_S = 5


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(num=formatting.number, ci=formatting.interval, clock=formatting.clock,
                       duration=formatting.duration, percent_of=formatting.percent_of)
    env.globals.update(swatch=legend_swatch, missing=formatting.MISSING)
    return templates


def _int_param(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        raise HTTPException(400, f"choose a session for {name.upper()} (?{name}=ID)")
    try:
        return int(raw)
    except ValueError:
        raise HTTPException(400, f"{name.upper()} must be a session number, not {raw!r}") from None


def create_app(database: Path | str) -> Starlette:
    """The app over the coordinator database at ``database`` (which may not exist yet: the
    pages then say so, and work as soon as the coordinator has created it)."""
    db = ReadOnlyDatabase(database)
    templates = _templates()

    def page(request: Request, name: str, status_code: int = 200, **context) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def record_or_404(session_id: int) -> SessionRecord:
        record = db.session(session_id)
        if record is None:
            raise HTTPException(404, f"there is no session {session_id} in this rig's database")
        return record

    def sessions_page(request: Request) -> Response:
        before = request.query_params.get("before")
        before_id = int(before) if before and before.isdigit() else None
        listings = db.sessions(LIST_PAGE_SIZE, before_id)
        recording = db.open_session()
        older = listings[-1].session.id if len(listings) == LIST_PAGE_SIZE else None
        return page(request, "sessions.html", listings=listings, recording=recording, older=older,
                    paged=before_id is not None,
                    refresh_s=REFRESH_WHILE_RECORDING_S if recording else None)

    def session_page(request: Request) -> Response:
        record = record_or_404(request.path_params["session_id"])
        report = record.stored.report if record.stored else None
        others = [s for s in db.sessions(100) if s.session.id != record.session.id and s.analysed and not s.analysis_error]
        still_open = record.session.state != "closed"
        return page(request, "session.html", record=record, view=report_view(report) if report else None,
                    others=others, refresh_s=REFRESH_WHILE_RECORDING_S if still_open else None)

    def compare_page(request: Request) -> Response:
        a_id, b_id = _int_param(request, "a"), _int_param(request, "b")
        if a_id == b_id:
            raise HTTPException(400, "choose two different sessions to compare")
        a, b = record_or_404(a_id), record_or_404(b_id)
        missing = [(label, r) for label, r in (("A", a), ("B", b)) if not (r.stored and r.stored.report)]
        rows = [] if missing else comparison_rows(a.stored.report, b.stored.report)
        return page(request, "compare.html", a=a, b=b, rows=rows, missing=missing, method=METHOD)

    def api_sessions(request: Request) -> Response:
        recording = db.open_session()
        return JSONResponse({"sessions": [listing_json(s) for s in db.sessions(LIST_PAGE_SIZE)],
                             "recording_session_id": recording.id if recording else None})

    def api_session(request: Request) -> Response:
        return JSONResponse(record_json(record_or_404(request.path_params["session_id"])))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        if exc.status_code == 404 and exc.detail == "Not Found":
            exc.detail = f"there is no page {request.url.path} on the rig"
        return page(request, "error.html", exc.status_code, status=exc.status_code, message=exc.detail)

    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        log.warning("database unavailable: %s", exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=503)
        return page(request, "error.html", 503, status=503, message=str(exc))

    routes = [
        Route("/", sessions_page),
        Route("/sessions/{session_id:int}", session_page),
        Route("/compare", compare_page),
        Route("/api/sessions", api_sessions),
        Route("/api/sessions/{session_id:int}", api_session),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error,
                                                        DatabaseUnavailable: database_unavailable})
