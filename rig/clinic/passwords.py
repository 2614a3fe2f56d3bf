"""Password hashing: Argon2id (RFC 9106) through argon2-cffi, with its current default cost.

A stored hash carries its own parameters, so raising the cost later re-hashes each password
at its next successful log-in (:func:`verify` says when). Unknown user names are checked
against a dummy hash, so a wrong name takes as long as a wrong password.
"""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("no such user: this hash only spends the time a real check takes")


def verify(stored_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs re-hash). ``stored_hash`` None: an unknown user, never a match."""
    try:
        _HASHER.verify(stored_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    if stored_hash is None:
        return False, False
    return True, _HASHER.check_needs_rehash(stored_hash)
