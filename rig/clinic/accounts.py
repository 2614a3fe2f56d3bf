"""Accounts and log-ins: users with a role, Argon2id password hashes, the lock-out after
repeated wrong passwords, and server-side log-in sessions.

A log-in session is a random 256-bit token held by the browser; the file keeps only its
SHA-256, so a copy of the file does not let anyone log in. Each session has its own CSRF
token for the forms. Sessions end on log-out, after ``idle_s`` without a request, after
``max_s`` in any case, and when the account is removed.
"""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from . import passwords
from .model import ClinicError, LockoutPolicy, Permission, ROLES, check_password, check_role, check_username
from .store import ClinicStore

TOUCH_EVERY_S = 30.0  # last-seen writes at most this often per session


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    failed_logins: int
    locked_until: float | None

    def can(self, permission: Permission) -> bool:
        return permission in ROLES[self.role]

    def locked(self, now_t: float) -> bool:
        return self.locked_until is not None and self.locked_until > now_t


@dataclass(frozen=True)
class Login:
    """A logged-in browser: who, and the CSRF token its forms must carry."""

    user: User
    csrf_token: str


@dataclass(frozen=True)
class LoginAttempt:
    token: str | None  # the new session's token when the password was right
    error: str | None  # what to tell the person otherwise
    locked_now: bool = False


WRONG = "wrong user name or password"
_USER_COLS = "id, username, role, failed_logins, locked_until"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, store: ClinicStore, lockout: LockoutPolicy = LockoutPolicy(),
                 idle_s: float = 1800.0, max_s: float = 43200.0):
        self.store, self.lockout, self.idle_s, self.max_s = store, lockout, idle_s, max_s

    # -- administration -------------------------------------------------------------------------
    def add(self, username: str, role: str, password: str) -> User:
        check_username(username), check_role(role), check_password(password)
        hashed = passwords.hash_password(password)
        try:
            with self.store.write() as conn:
                conn.execute("INSERT INTO users (username, role, password_hash, created_t) VALUES (?, ?, ?, ?)",
                             (username, role, hashed, time.time()))
        except sqlite3.IntegrityError:
            raise ClinicError(f"there is already a user {username!r}") from None
        return self.get(username)

    def get(self, username: str) -> User | None:
        with self.store.read() as conn:
            row = conn.execute(f"SELECT {_USER_COLS} FROM users WHERE username = ?", (username,)).fetchone()
        return User(*row) if row else None

    def list(self) -> list[User]:
        with self.store.read() as conn:
            return [User(*r) for r in conn.execute(f"SELECT {_USER_COLS} FROM users ORDER BY username")]

    def remove(self, username: str) -> bool:
        with self.store.write() as conn:
            return conn.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0

    def unlock(self, username: str) -> bool:
        with self.store.write() as conn:
            return conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?",
                                (username,)).rowcount > 0

    # -- logging in and out --------------------------------------------------------------------
    def log_in(self, username: str, password: str, now_t: float | None = None) -> LoginAttempt:
        now_t = time.time() if now_t is None else now_t
        with self.store.read() as conn:
            row = conn.execute(f"SELECT {_USER_COLS}, password_hash FROM users WHERE username = ?",
                               (username,)).fetchone()
        user, stored = (User(*row[:5]), row[5]) if row else (None, None)
        ok, rehash = passwords.verify(stored, password)  # always spends the time, even for no user
        if user is None:
            return LoginAttempt(None, WRONG)
        if user.locked(now_t):
            return LoginAttempt(None, "this account is locked after too many wrong passwords: "
                                      "wait, or ask an admin to unlock it")
        if not ok:
            return self._failed(user, now_t)
        token = secrets.token_urlsafe(32)
        with self.store.write() as conn:
            conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", (user.id,))
            if rehash:
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (passwords.hash_password(password), user.id))
            conn.execute("INSERT INTO login_sessions VALUES (?, ?, ?, ?, ?)",
                         (_hash_token(token), user.id, secrets.token_urlsafe(32), now_t, now_t))
            conn.execute("DELETE FROM login_sessions WHERE last_seen_t < ? OR created_t < ?",
                         (now_t - self.idle_s, now_t - self.max_s))
            self.store.audit(username, "log in", conn=conn)
        return LoginAttempt(token, None)

    def _failed(self, user: User, now_t: float) -> LoginAttempt:
        with self.store.write() as conn:
            before = conn.execute("SELECT failed_logins FROM users WHERE id = ?", (user.id,)).fetchone()[0]
            failures, until = self.lockout.after_failure(before, now_t)
            conn.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?", (failures, until, user.id))
            if until is not None:
                self.store.audit(user.username, "locked after wrong passwords", conn=conn)
        if until is not None:
            return LoginAttempt(None, f"{WRONG}; the account is now locked for {self.lockout.lock_s / 60:.0f} min",
                                locked_now=True)
        return LoginAttempt(None, WRONG)

    def session(self, token: str, now_t: float | None = None) -> Login | None:
        """The log-in a browser's token belongs to, if it is still valid (and mark it used)."""
        now_t = time.time() if now_t is None else now_t
        key = _hash_token(token)
        with self.store.read() as conn:
            row = conn.execute(f"SELECT s.csrf_token, s.created_t, s.last_seen_t, "
                               f"{', '.join('u.' + c.strip() for c in _USER_COLS.split(','))} "
                               "FROM login_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
                               (key,)).fetchone()
        if row is None:
            return None
        csrf, created_t, seen_t, user = row[0], row[1], row[2], User(*row[3:])
        if now_t - seen_t > self.idle_s or now_t - created_t > self.max_s or user.locked(now_t):
            self.log_out(token)
            return None
        if now_t - seen_t > TOUCH_EVERY_S:
            with self.store.write() as conn:
                conn.execute("UPDATE login_sessions SET last_seen_t = ? WHERE token_hash = ?", (now_t, key))
        return Login(user, csrf)

    def log_out(self, token: str) -> None:
        with self.store.write() as conn:
            conn.execute("DELETE FROM login_sessions WHERE token_hash = ?", (_hash_token(token),))
