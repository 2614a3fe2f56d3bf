"""What every group of pages shares: the recordings (read-only), the clinic's records, the
accounts, and how a page is rendered."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rig.clinic.accounts import Accounts
from rig.clinic.records import Patient, Records

from .database import ReadOnlyDatabase, SessionRecord


@dataclass(frozen=True)
class Web:
    db: ReadOnlyDatabase
    records: Records
    accounts: Accounts
    page: Callable[..., Response]  # page(request, template, status_code=200, **context)
    fragment: Callable[..., str]  # fragment(template, **context): a piece of a page, as HTML

    def record_or_404(self, session_id: int) -> SessionRecord:
        record = self.db.session(session_id) if 0 < session_id <= MAX_ROW_ID else None
        if record is None:
            raise HTTPException(404, f"there is no session {session_id} in this rig's database")
        return record

    def patient_or_404(self, patient_id: int) -> Patient:
        patient = self.records.patient(patient_id)
        if patient is None:
            raise HTTPException(404, f"there is no patient {patient_id}")
        return patient

    def claim_pending(self) -> None:
        """Hand the patient picked before the walk to the session that walk recorded."""
        if self.records.pending() is not None:
            self.records.claim_pending([s.session.id for s in self.db.sessions(50)])


def username(request: Request) -> str:
    return request.state.login.user.username


MAX_ROW_ID = 2**63 - 1  # SQLite's largest INTEGER: a larger id cannot name a row


def row_id(raw: str | None) -> int | None:
    """Decimal digits that fit SQLite's INTEGER, else None (never int() on 5000 digits)."""
    if not raw or not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ROW_ID else None


def path_int(request: Request, name: str) -> int:
    """The {name} of a route (routes take any text here), or 404 for what cannot be an id."""
    raw = request.path_params[name]
    value = row_id(raw)
    if value is None:
        raise HTTPException(404, f"there is nothing numbered {raw[:40]!r} here")
    return value
