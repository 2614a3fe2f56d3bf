"""Downloads of one session: the report as PDF, every measure and every stride as CSV.
File names carry the session number only, never the patient's name; each download is
written to the audit log when the session belongs to a patient."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rig.clinic.model import Permission

from .context import Web, path_int, username
from .auth import guarded
from .csv_export import measures_csv, strides_csv
from .database import SessionRecord


def _download(body: bytes | str, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def routes(web: Web) -> list[Route]:
    def report_of(request: Request, what: str) -> tuple[SessionRecord, dict]:
        record = web.record_or_404(path_int(request, "session_id"))
        sid = record.session.id
        if not (record.stored and record.stored.report):
            raise HTTPException(404, f"session {sid} has no gait report to download")
        assignment = web.records.assignments([sid]).get(sid)
        if assignment:
            web.records.store.audit(username(request), f"download {what}", assignment.patient_id, sid)
        return record, record.stored.report

    def pdf(request: Request) -> Response:
        from .pdf_report import ReportHeader, render_pdf  # fpdf2 and its fonts load on the first PDF, not at start
        record, report = report_of(request, "PDF")
        s = record.session
        header = ReportHeader(s.id, s.started_t, s.ended_t)
        assignment = web.records.assignments([s.id]).get(s.id)
        patient = web.records.patient(assignment.patient_id) if assignment else None
        if assignment and patient:
            header = ReportHeader(s.id, s.started_t, s.ended_t, patient.name, patient.birth_date, patient.clinic_id,
                                  str(assignment.condition))
        return _download(render_pdf(report, header), "application/pdf", f"gait-report-session-{s.id}.pdf")

    def measures(request: Request) -> Response:
        record, report = report_of(request, "measures CSV")
        return _download(measures_csv(report), "text/csv; charset=utf-8", f"session-{record.session.id}-measures.csv")

    def strides(request: Request) -> Response:
        record, report = report_of(request, "strides CSV")
        return _download(strides_csv(report), "text/csv; charset=utf-8", f"session-{record.session.id}-strides.csv")

    clinical = Permission.CLINICAL
    return [Route("/sessions/{session_id}/report.pdf", guarded(clinical, pdf)),
            Route("/sessions/{session_id}/measures.csv", guarded(clinical, measures)),
            Route("/sessions/{session_id}/strides.csv", guarded(clinical, strides))]
