"""Pages for the technician and the admin: the rig's recording health (frames per camera,
completeness — no patient names) and the accounts (add, unlock, remove)."""
from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rig.clinic.model import ROLES, Permission

from .auth import guarded
from .context import Web, username

HEALTH_SESSIONS = 30


def routes(web: Web) -> list[Route]:
    accounts = web.accounts

    def rig_page(request: Request) -> Response:
        listings = web.db.sessions(HEALTH_SESSIONS)
        views = sorted({v for s in listings for v in s.frames})
        return web.page(request, "rig.html", listings=listings, views=views, recording=web.db.open_session())

    def users_page(request: Request) -> Response:
        return web.page(request, "users.html", users=accounts.list(), roles=list(ROLES),
                        now_t=time.time())

    def users_post(request: Request) -> Response:
        f, me = request.state.form, username(request)
        action, name = f.get("action", ""), f.get("username", "")
        if action == "add":
            accounts.add(name, f.get("role", ""), f.get("password", ""))
        elif action == "unlock":
            accounts.unlock(name)
        elif action == "remove":
            if name == me:
                raise HTTPException(400, "you cannot remove your own account while logged in with it")
            accounts.remove(name)
        else:
            raise HTTPException(400, f"unknown action {action!r}")
        accounts.store.audit(me, f"account {action}: {name}")
        return RedirectResponse("/admin/users", status_code=303)

    return [
        Route("/rig", guarded(Permission.RIG, rig_page)),
        Route("/admin/users", guarded(Permission.ACCOUNTS, users_page), methods=["GET"]),
        Route("/admin/users", guarded(Permission.ACCOUNTS, users_post), methods=["POST"]),
    ]
