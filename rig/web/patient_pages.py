"""Patients: find or create one, their page (visits, sessions and conditions, comparison of
their sessions, the condition of the next walk), export as a ZIP archive, erase with their sessions'
recordings and video (admins, :mod:`.patient_erasure`).

Nothing of a patient goes to the process log: names travel only in pages, and what was
opened by whom goes to the clinic file's audit log.
"""
from __future__ import annotations

import tempfile
from typing import IO, Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from rig.clinic.model import CONDITION_KINDS, ClinicError, Condition, PatientFields, Permission, group_visits
from rig.config import WebSettings

from .auth import guarded
from .context import Web, path_int, username
from .patient_erasure import erase_patient
from .patient_export import write_patient_archive


def routes(web: Web, settings: WebSettings) -> list[Route]:
    records = web.records

    def patients_page(request: Request) -> Response:
        query = request.query_params.get("q", "")
        return web.page(request, "patients.html", query=query, patients=records.find(query))

    def create(request: Request) -> Response:
        f = request.state.form
        fields = PatientFields.parse(f.get("name", ""), f.get("birth_date", ""), f.get("clinic_id", ""),
                                     f.get("notes", ""))
        patient = records.create(fields, username(request))
        return RedirectResponse(f"/patients/{patient.id}", status_code=303)

    def patient_page(request: Request) -> Response:
        web.claim_pending()
        patient = web.patient_or_404(path_int(request, "patient_id"))
        records.store.audit(username(request), "open patient", patient.id)
        assigned = records.assignments(patient_id=patient.id)
        listings = {s.session.id: s for s in web.db.sessions_by_id(sorted(assigned))}
        visits = group_visits([(sid, s.session.started_t) for sid, s in listings.items()])
        comparable = [s for s in listings.values() if s.analysed and not s.analysis_error]
        pending = records.pending()
        return web.page(request, "patient.html", patient=patient, visits=visits, listings=listings,
                        assigned=assigned, comparable=comparable, kinds=CONDITION_KINDS,
                        pending=pending if pending and pending.patient_id == patient.id else None)

    def next_walk(request: Request) -> Response:
        patient = web.patient_or_404(path_int(request, "patient_id"))
        f = request.state.form
        if f.get("action") == "cancel":
            records.clear_pending(username(request))
        else:
            newest = web.db.sessions(1)
            records.set_pending(patient.id, Condition.parse(f.get("kind", ""), f.get("label", "")),
                                newest[0].session.id if newest else 0, username(request))
        return RedirectResponse(f"/patients/{patient.id}", status_code=303)

    def export(request: Request) -> Response:
        patient = web.patient_or_404(path_int(request, "patient_id"))
        records.store.audit(username(request), "export patient", patient.id)
        # built on disk beside the clinic file (where the rig keeps its data, not a RAM /tmp);
        # an unnamed file, gone when closed, also when the download is cut off
        archive = tempfile.TemporaryFile(dir=records.store.path.parent)
        try:
            write_patient_archive(archive, records, web.db, patient)
            size = archive.tell()
            archive.seek(0)
        except BaseException:
            archive.close()
            raise
        return StreamingResponse(_chunks(archive), media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="patient-{patient.id}.zip"',
            "Content-Length": str(size), "Cache-Control": "no-store"})

    def erase(request: Request) -> Response:
        patient = web.patient_or_404(path_int(request, "patient_id"))
        if request.state.form.get("confirm") != str(patient.id):
            raise ClinicError(f"to erase, type the patient number {patient.id} in the confirmation box")
        erasure = erase_patient(records, web.db, patient.id, username(request), settings.video_token(),
                                settings.video_timeout_s)
        return web.page(request, "patients.html", query="", patients=records.find(""),
                        erased=erasure.lines() if erasure else [f"patient {patient.id} was already erased"])

    clinical = Permission.CLINICAL
    return [
        Route("/patients", guarded(clinical, patients_page), methods=["GET"]),
        Route("/patients", guarded(clinical, create), methods=["POST"]),
        Route("/patients/{patient_id}", guarded(clinical, patient_page)),
        Route("/patients/{patient_id}/next-walk", guarded(clinical, next_walk), methods=["POST"]),
        Route("/patients/{patient_id}/export.zip", guarded(clinical, export)),
        Route("/patients/{patient_id}/erase", guarded(Permission.ACCOUNTS, erase), methods=["POST"]),
    ]


def _chunks(f: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """The file in 1 MiB pieces, closed at the end."""
    with f:
        while chunk := f.read(size):
            yield chunk
