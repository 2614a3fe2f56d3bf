"""Sessions, a session's report, two sessions compared, and the same as JSON under /api.

Clinicians see each session's patient and condition; opening the report or the comparison
of a patient's sessions goes into the audit log (who opened which patient).
"""
from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from rig.clinic.model import Condition, Permission
from rig.clinic.records import Assignment, Patient
from rig.gait.outages import describe
from rig.gait.norms_stp import age_years

from .api import listing_json, record_json
from .auth import guarded
from .comparison import MDC_NOTE, METHOD, ComparisonRow, comparison_rows
from .context import Web, path_int, row_id, username
from .database import SessionRecord
from .report_view import report_view

LIST_PAGE_SIZE = 50
REFRESH_WHILE_RECORDING_S = 5


def _int_param(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        raise HTTPException(400, f"choose a session for {name.upper()} (?{name}=ID)")
    try:
        return int(raw)
    except ValueError:
        raise HTTPException(400, f"{name.upper()} must be a session number, not {raw[:40]!r}") from None


@dataclass(frozen=True)
class ComparedSessions:
    """Sessions A and B of ``?a=ID&b=ID``, their comparison rows (none while either lacks a
    report: ``missing`` says which), and whose patients they are."""

    a: SessionRecord
    b: SessionRecord
    rows: list[ComparisonRow]
    missing: list[tuple[str, SessionRecord]]
    assigned: dict[int, Assignment]
    patients: dict[int, Patient]


def compared_sessions(web: Web, request: Request, action: str, need_reports: bool = False) -> ComparedSessions:
    """The one place the page and the PDF get a comparison from, so they show the same rows;
    ``action`` goes into the audit log for each patient the sessions belong to. With
    ``need_reports`` a session without a report is a 404 (nothing to download, nothing logged)."""
    a_id, b_id = _int_param(request, "a"), _int_param(request, "b")
    if a_id == b_id:
        raise HTTPException(400, "choose two different sessions to compare")
    a, b = web.record_or_404(a_id), web.record_or_404(b_id)
    missing = [(label, r) for label, r in (("A", a), ("B", b)) if not (r.stored and r.stored.report)]
    if need_reports and missing:
        label, r = missing[0]
        raise HTTPException(404, f"{label} (session {r.session.id}) has no gait report to compare")
    rows = [] if missing else comparison_rows(a.stored.report, b.stored.report)
    assigned = web.records.assignments([a_id, b_id])
    patients = web.records.patients_by_id({x.patient_id for x in assigned.values()})
    for pid in patients:
        web.records.store.audit(username(request), action, pid)
    return ComparedSessions(a, b, rows, missing, assigned, patients)


def routes(web: Web) -> list[Route]:
    records = web.records

    def sessions_page(request: Request) -> Response:
        web.claim_pending()
        before_id = row_id(request.query_params.get("before"))
        listings = web.db.sessions(LIST_PAGE_SIZE, before_id)
        recording = web.db.open_session()
        older = listings[-1].session.id if len(listings) == LIST_PAGE_SIZE else None
        assigned = records.assignments([s.session.id for s in listings])
        pending = records.pending()
        patients = records.patients_by_id({a.patient_id for a in assigned.values()}
                                          | ({pending.patient_id} if pending else set()))
        return web.page(request, "sessions.html", listings=listings, recording=recording, older=older,
                        paged=before_id is not None, assigned=assigned, patients=patients, pending=pending,
                        refresh_s=REFRESH_WHILE_RECORDING_S if recording else None)

    def session_page(request: Request) -> Response:
        web.claim_pending()
        record = web.record_or_404(path_int(request, "session_id"))
        sid = record.session.id
        report = record.stored.report if record.stored else None
        assignment = records.assignments([sid]).get(sid)
        patient = records.patient(assignment.patient_id) if assignment else None
        candidates = [s for s in web.db.sessions(100) if s.session.id != sid and s.analysed and not s.analysis_error]
        if assignment:  # compare within the patient's own sessions
            own = records.assignments(patient_id=assignment.patient_id)
            candidates = [s for s in candidates if s.session.id in own]
            records.store.audit(username(request), "open report", assignment.patient_id, sid)
        else:
            own = records.assignments([s.session.id for s in candidates])
        still_open = record.session.state != "closed"
        age = age_years(patient.birth_date if patient else None, record.session.started_t)
        return web.page(request, "session.html", record=record,
                        view=report_view(report, age=age) if report else None,
                        outages=outage_lines(report), counts=web.db.session_counts(sid),
                        others=candidates, others_assigned=own, assignment=assignment, patient=patient,
                        patients=records.find(limit=200) if not assignment else [],
                        refresh_s=REFRESH_WHILE_RECORDING_S if still_open else None)

    def assign(request: Request) -> Response:
        sid = web.record_or_404(path_int(request, "session_id")).session.id
        form = request.state.form
        if form.get("action") == "unassign":
            records.unassign(sid, username(request))
        else:
            patient = web.patient_or_404(_form_int(form, "patient"))
            records.assign(sid, patient.id, Condition.parse(form.get("kind", ""), form.get("label", "")),
                           username(request))
        return RedirectResponse(f"/sessions/{sid}", status_code=303)

    def compare_page(request: Request) -> Response:
        c = compared_sessions(web, request, "compare sessions")
        return web.page(request, "compare.html", a=c.a, b=c.b, rows=c.rows, missing=c.missing, assigned=c.assigned,
                        patients=c.patients, method=METHOD, mdc_note=MDC_NOTE)

    def api_sessions(request: Request) -> Response:
        recording = web.db.open_session()
        return JSONResponse({"sessions": [listing_json(s) for s in web.db.sessions(LIST_PAGE_SIZE)],
                             "recording_session_id": recording.id if recording else None})

    def api_session(request: Request) -> Response:
        return JSONResponse(record_json(web.record_or_404(path_int(request, "session_id"))))

    clinical = Permission.CLINICAL
    return [
        Route("/", guarded(clinical, sessions_page)),
        Route("/sessions/{session_id}", guarded(clinical, session_page)),
        Route("/sessions/{session_id}/assign", guarded(clinical, assign), methods=["POST"]),
        Route("/compare", guarded(clinical, compare_page)),
        Route("/api/sessions", guarded(clinical, api_sessions)),
        Route("/api/sessions/{session_id}", guarded(clinical, api_session)),
    ]


def outage_lines(report: dict | None) -> list[tuple[str, str]]:
    """(view, sentence) per camera outage the report names; a report from before outages
    were named, or a malformed entry, gives none rather than an error page."""
    out = []
    for entry in (report or {}).get("outages") or []:
        try:
            out.append((str(entry["view"]), describe(entry)))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def _form_int(form: dict[str, str], name: str) -> int:
    try:
        return int(form.get(name, ""))
    except ValueError:
        raise HTTPException(400, f"choose a {name}") from None
