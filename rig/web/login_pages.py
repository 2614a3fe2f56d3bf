"""The log-in page, the log-in form's post, and log-out.

The log-in form is the one form posted before there is a log-in, so its CSRF token is bound
to a nonce cookie set with the page (double submit, signed): a page elsewhere cannot log a
tablet into an account of its choosing.
"""
from __future__ import annotations

import secrets
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rig.clinic.accounts import Accounts
from rig.clinic.model import Permission

from .auth import LOGIN_COOKIE, SESSION_COOKIE, CookieSigner, current_login, guarded, read_form, safe_next, set_cookie

Page = Callable[..., Response]


def home_of(role: str) -> str:
    return "/rig" if role == "technician" else "/"


def login_routes(accounts: Accounts, signer: CookieSigner, page: Page, secure: bool) -> list[Route]:
    def form_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
        # one nonce per browser: another tab (or the favicon's redirect here) must not
        # invalidate the form already on screen
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = page(request, "login.html", status_code, error=error, csrf=signer.mac("login:" + nonce),
                        next=safe_next(request.query_params.get("next"), ""),
                        username=getattr(request.state, "attempted", ""))
        set_cookie(response, LOGIN_COOKIE, nonce, secure)
        return response

    async def login_page(request: Request) -> Response:
        return form_page(request)

    async def login_post(request: Request) -> Response:
        form = await read_form(request)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not secrets.compare_digest(form.get("csrf", ""), signer.mac("login:" + nonce)):
            raise HTTPException(403, "the log-in form is out of date: reload the page and try again")
        username = form.get("username", "").strip().lower()
        attempt = await run_in_threadpool(accounts.log_in, username, form.get("password", ""))
        if attempt.token is None:
            request.state.attempted = username
            return form_page(request, attempt.error, 401)
        user = accounts.get(username)
        response = RedirectResponse(safe_next(form.get("next"), home_of(user.role)), status_code=303)
        set_cookie(response, SESSION_COOKIE, signer.sign(attempt.token), secure, max_age=int(accounts.max_s))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    def logout(request: Request) -> Response:
        token = signer.unsign(request.cookies.get(SESSION_COOKIE))
        if token:
            accounts.log_out(token)
        accounts.store.audit(current_login(request).user.username, "log out")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
        return response

    return [Route("/login", login_page, methods=["GET"]), Route("/login", login_post, methods=["POST"]),
            Route("/logout", guarded(Permission.RIG, logout), methods=["POST"])]
