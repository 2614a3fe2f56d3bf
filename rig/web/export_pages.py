"""Downloads: one session's report as PDF, every measure and every stride as CSV, and two
sessions' comparison as PDF.
File names carry session numbers only, never the patient's name; each download is
written to the audit log when the session belongs to a patient."""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rig.clinic.model import Permission
from rig.clinic.records import Assignment, Patient
from rig.gait.norms_stp import age_years

from .context import Web, path_int, username
from .auth import guarded
from .csv_export import measures_csv, strides_csv
from .database import SessionRecord
from .report_pages import compared_sessions

if TYPE_CHECKING:
    from .pdf_report import ReportHeader


def _download(body: bytes | str, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _header(record: SessionRecord, assignment: Assignment | None, patient: Patient | None) -> ReportHeader:
    """Who walked, in what and when, for a PDF's title (only the session when not assigned)."""
    from .pdf_report import ReportHeader
    s = record.session
    if assignment and patient:
        return ReportHeader(s.id, s.started_t, s.ended_t, patient.name, patient.birth_date, patient.clinic_id,
                            str(assignment.condition))
    return ReportHeader(s.id, s.started_t, s.ended_t)


def routes(web: Web) -> list[Route]:
    def patient_of(record: SessionRecord) -> tuple[Assignment | None, Patient | None]:
        sid = record.session.id
        assignment = web.records.assignments([sid]).get(sid)
        return assignment, web.records.patient(assignment.patient_id) if assignment else None

    def age_at(record: SessionRecord, patient: Patient | None) -> int | None:
        """The patient's age at the session (years): it picks the typical ranges' age group."""
        return age_years(patient.birth_date if patient else None, record.session.started_t)

    def report_of(request: Request, what: str) -> tuple[SessionRecord, dict]:
        record = web.record_or_404(path_int(request, "session_id"))
        sid = record.session.id
        if not (record.stored and record.stored.report):
            raise HTTPException(404, f"session {sid} has no gait report to download")
        assignment, _ = patient_of(record)
        if assignment:
            web.records.store.audit(username(request), f"download {what}", assignment.patient_id, sid)
        return record, record.stored.report

    def pdf(request: Request) -> Response:
        from .pdf_report import render_pdf  # fpdf2 and its fonts load on the first PDF, not at start
        record, report = report_of(request, "PDF")
        assignment, patient = patient_of(record)
        return _download(render_pdf(report, _header(record, assignment, patient), age_at(record, patient)),
                         "application/pdf", f"gait-report-session-{record.session.id}.pdf")

    def comparison_pdf(request: Request) -> Response:
        from .compare_pdf import render_comparison_pdf
        c = compared_sessions(web, request, "download comparison PDF", need_reports=True)
        a, b = (c.assigned.get(c.a.session.id), c.assigned.get(c.b.session.id))
        headers = (_header(c.a, a, c.patients.get(a.patient_id) if a else None),
                   _header(c.b, b, c.patients.get(b.patient_id) if b else None))
        return _download(render_comparison_pdf(*headers, c.rows), "application/pdf",
                         f"comparison-sessions-{c.a.session.id}-{c.b.session.id}.pdf")

    def measures(request: Request) -> Response:
        record, report = report_of(request, "measures CSV")
        age = age_at(record, patient_of(record)[1])
        return _download(measures_csv(report, age=age), "text/csv; charset=utf-8",
                         f"session-{record.session.id}-measures.csv")

    def strides(request: Request) -> Response:
        record, report = report_of(request, "strides CSV")
        return _download(strides_csv(report), "text/csv; charset=utf-8", f"session-{record.session.id}-strides.csv")

    clinical = Permission.CLINICAL
    return [Route("/sessions/{session_id}/report.pdf", guarded(clinical, pdf)),
            Route("/compare.pdf", guarded(clinical, comparison_pdf)),
            Route("/sessions/{session_id}/measures.csv", guarded(clinical, measures)),
            Route("/sessions/{session_id}/strides.csv", guarded(clinical, strides))]
