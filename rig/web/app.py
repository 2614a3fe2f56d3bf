"""The tablet pages as a Starlette app: server-rendered HTML, inline SVG charts, a JSON API,
behind log-ins.

Route groups: :mod:`.login_pages` (log in/out), :mod:`.report_pages` (sessions, reports,
comparison, JSON API), :mod:`.patient_pages` (patients, conditions, export, erase),
:mod:`.export_pages` (PDF and CSV), :mod:`.live_pages` (the walk as it happens, server-sent events),
:mod:`.admin_pages` (rig health for technicians, accounts
for admins), :mod:`.review_pages` (review video from the camera nodes),
``/static/…`` the style sheet. :class:`.auth.LoginGate` refuses every anonymous
request but ``/login`` and static files; each route names the permission it needs
(:func:`.auth.guarded`). Recordings are read read-only (:mod:`rig.web.database`); patients and
accounts live in the clinic file (:mod:`rig.clinic`). Errors get a page (JSON under ``/api``),
never a traceback.
"""
from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rig.clinic.accounts import Accounts
from rig.clinic.model import ClinicError, LockoutPolicy, Permission
from rig.clinic.records import Records
from rig.clinic.store import ClinicStore
from rig.config import WebSettings

from . import admin_pages, export_pages, formatting, live_pages, patient_pages, report_pages, review_pages
from .auth import CookieSigner, LoginGate, SecurityHeaders, check_every_route_guarded
from .charts import legend_swatch
from .context import Web
from .database import DatabaseUnavailable, ReadOnlyDatabase
from .login_pages import login_routes

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


class _StaticFiles(StaticFiles):
    """404, not 500, for names the OS cannot even look up (a NUL byte, a name too long)."""

    def lookup_path(self, path: str):
        try:
            return super().lookup_path(path)
        except (ValueError, OSError):
            return "", None


def _templates() -> Jinja2Templates:
    def who(request: Request) -> dict:
        login = getattr(request.state, "login", None)
        return {"login": login, "Permission": Permission}

    templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[who])
    env = templates.env
    env.filters.update(num=formatting.number, ci=formatting.interval, clock=formatting.clock,
                       duration=formatting.duration, percent_of=formatting.percent_of)
    env.globals.update(swatch=legend_swatch, missing=formatting.MISSING)
    return templates


def create_app(database: Path | str, clinic_database: Path | str | None = None,
               settings: WebSettings | None = None, tls: bool = False) -> Starlette:
    """The app over the coordinator database at ``database`` (which may not exist yet: the
    pages then say so) and the clinic file (default: clinic.sqlite beside it)."""
    settings = settings or WebSettings()
    store = ClinicStore(clinic_database or settings.clinic_path(Path(database)))
    accounts = Accounts(store, LockoutPolicy(settings.lockout_after_failures, settings.lockout_s),
                        settings.session_idle_s, settings.session_max_s)
    templates = _templates()

    def page(request: Request, name: str, status_code: int = 200, **context) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def fragment(name: str, **context) -> str:
        return templates.get_template(name).render(missing=formatting.MISSING, **context)

    records = Records(store)
    web = Web(ReadOnlyDatabase(database, hidden=records.erased), records, accounts, page, fragment)
    signer = CookieSigner(store.cookie_secret)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        if exc.status_code == 404 and exc.detail == "Not Found":
            exc.detail = f"there is no page {request.url.path} on the rig"
        return page(request, "error.html", exc.status_code, status=exc.status_code, message=exc.detail)

    async def clinic_error(request: Request, exc: ClinicError) -> Response:
        return await http_error(request, HTTPException(400, str(exc)))

    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        log.warning("database unavailable: %s", exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=503)
        return page(request, "error.html", 503, status=503, message=str(exc))

    routes = [*login_routes(accounts, signer, page, tls), *report_pages.routes(web),
              *patient_pages.routes(web, settings), *export_pages.routes(web), *admin_pages.routes(web), *live_pages.routes(web),
              *review_pages.routes(web, settings)]
    check_every_route_guarded(routes, public={"/login"})
    routes.append(Mount("/static", _StaticFiles(directory=str(HERE / "static")), name="static"))
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders), Middleware(LoginGate, accounts=accounts, signer=signer)],
                    exception_handlers={HTTPException: http_error, ClinicError: clinic_error,
                                        DatabaseUnavailable: database_unavailable})
    app.state.web = web
    return app
