"""Who may see what: the log-in cookie, the gate in front of every route, and CSRF.

- :class:`LoginGate` (ASGI middleware) runs before routing: every request but ``/login`` and
  ``/static/…`` must carry a valid log-in cookie, else a page request is sent to ``/login``
  (303) and an ``/api`` request gets 401. Unknown paths are refused the same way, so nobody
  logged out can even probe which routes exist.
- :func:`guarded` wraps each endpoint with the permission it needs (403 otherwise) and, for
  anything but GET/HEAD, checks the form's CSRF token against the log-in's own (403 without
  it). :func:`check_every_route_guarded` makes forgetting the wrapper a start-up error.
- The cookie is ``token.signature`` (HMAC-SHA256 with the clinic file's secret), HttpOnly,
  SameSite=Strict, Secure under TLS; the token itself is checked against the server-side
  session table (:class:`rig.clinic.accounts.Accounts`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rig.clinic.accounts import Accounts, Login
from rig.clinic.model import Permission

SESSION_COOKIE = "gaitrig_session"
LOGIN_COOKIE = "gaitrig_login"  # a nonce binding the log-in form's CSRF token to this browser
PUBLIC_PATHS = ("/login",)
PUBLIC_PREFIXES = ("/static/",)
MAX_FORM_BYTES = 64 * 1024
SAFE_METHODS = ("GET", "HEAD")


class CookieSigner:
    def __init__(self, secret: bytes):
        self._secret = secret

    def mac(self, value: str) -> str:
        digest = hmac.new(self._secret, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, value: str) -> str:
        return f"{value}.{self.mac(value)}"

    def unsign(self, signed: str | None) -> str | None:
        value, _, mac = (signed or "").rpartition(".")
        return value if value and hmac.compare_digest(mac, self.mac(value)) else None


def set_cookie(response: Response, name: str, value: str, secure: bool, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict")


class LoginGate:
    """Refuses every anonymous request except the log-in page and static files."""

    def __init__(self, app: ASGIApp, accounts: Accounts, signer: CookieSigner):
        self.app, self.accounts, self.signer = app, accounts, signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = self.signer.unsign(request.cookies.get(SESSION_COOKIE))
        login = await run_in_threadpool(self.accounts.session, token) if token else None
        if login is None:
            await refusal(request)(scope, receive, send)
            return
        scope.setdefault("state", {})["login"] = login
        await self.app(scope, receive, send)


def refusal(request: Request) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "log in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def current_login(request: Request) -> Login:
    return request.state.login


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form body (what the pages' forms send), at most MAX_FORM_BYTES."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"a form may hold at most {MAX_FORM_BYTES // 1024} KiB")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "the form could not be read") from None


Endpoint = Callable[[Request], Response | Awaitable[Response]]


def guarded(permission: Permission, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` behind a permission and, for posts, a valid CSRF token; a sync endpoint
    runs in the thread pool as Starlette would run it. The form is in ``request.state.form``."""

    async def wrapper(request: Request) -> Response:
        login = current_login(request)
        if not login.user.can(permission):
            raise HTTPException(403, f"a {login.user.role} account cannot open this page")
        request.state.form = {}
        if request.method not in SAFE_METHODS:
            request.state.form = await read_form(request)
            if not hmac.compare_digest(request.state.form.get("csrf", ""), login.csrf_token):
                raise HTTPException(403, "this form is out of date or did not come from the rig's pages: "
                                         "reload the page and try again")
        if inspect.iscoroutinefunction(endpoint):
            return await endpoint(request)
        return await run_in_threadpool(endpoint, request)

    wrapper.permission = permission
    wrapper.__name__ = endpoint.__name__
    return wrapper


def check_every_route_guarded(routes: list[BaseRoute], public: set[str]) -> None:
    """A route without :func:`guarded` (and not public) is a programming error: fail at start."""
    for r in routes:
        if isinstance(r, Route) and r.path not in public and not hasattr(r.endpoint, "permission"):
            raise RuntimeError(f"route {r.path} has no permission: wrap it with guarded()")


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site is followed after logging in: not ``//host``, a scheme, a
    backslash, or any control or space character (browsers drop tabs and newlines, so
    ``/\t/host`` would become ``//host``)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and all(c.isprintable() and not c.isspace() for c in target)):
        return target
    return default


SECURITY_HEADERS = [
    # everything the pages use is served from here; nothing may frame them (clickjacking a
    # form), no page is cached (patients' data), no address leaks in a Referer
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                 b"form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, and ``Cache-Control: no-store`` to
    every one but the static files."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(PUBLIC_PREFIXES)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if not static and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
