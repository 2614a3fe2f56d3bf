"""The video review (``/sessions/{id}/review``): any view of a session played from the camera
node that filmed it — slow motion, frame by frame, two views side by side at the same
trigger index, the skeleton drawn over the picture, a jump to any detected event.

The page's script (static/review.js) asks for frames only when the clinician plays, steps or
jumps: ``/api/sessions/{id}/video/{view}`` passes the node's frame stream through as it
arrives (nothing is kept here), ``/api/sessions/{id}/video/{view}/info`` says what the node
holds (or that it is offline), ``/api/sessions/{id}/keypoints/{view}`` gives the stored
landmarks of the same frames for the overlay. Clinicians only; opening the review and every
clip asked of a node (who, which view, which frames) go into the audit log when the session is
a patient's.
"""
from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rig.bus.payloads import PayloadError, decode_keypoints
from rig.clinic.model import Permission
from rig.config import WebSettings
from rig.video import protocol
from rig.video.client import ClipClient, NodeOffline, NodeRefused

from .auth import guarded
from .context import Web, path_int, username
from .review import event_table, review_events

VIEWS = ("rear", "left", "right", "front")
WINDOW_FRAMES = 120  # what the player asks at once: 2 s at 60 fps


def routes(web: Web, settings: WebSettings) -> list[Route]:
    def audit(request: Request, session_id: int, action: str) -> None:
        assignment = web.records.assignments([session_id]).get(session_id)
        if assignment:
            web.records.store.audit(username(request), action, assignment.patient_id, session_id)

    def view_param(request: Request) -> str:
        view = request.path_params["view"]
        if view not in VIEWS:
            raise HTTPException(404, f"there is no camera view {view[:20]!r} (views: {', '.join(VIEWS)})")
        return view

    def client(view: str) -> ClipClient:
        url = (web.db.node_infos().get(view) or {}).get("clips_url")
        if not url:
            raise HTTPException(404, f"camera node {view} keeps no review video (its birth message names no "
                                     "clip server)")
        return ClipClient(url, view, settings.video_timeout_s, settings.video_token())

    def review_page(request: Request) -> Response:
        record = web.record_or_404(path_int(request, "session_id"))
        sid = record.session.id
        report = record.stored.report if record.stored else None
        frames = {n.view: n.frames_received for n in record.nodes if n.frames_received}
        views = [v for v in VIEWS if v in frames]
        pulses = record.session.pulses_sent or max(frames.values(), default=0)
        audit(request, sid, "open video review")
        events = review_events(report, record.session.fps)
        return web.page(request, "review.html", record=record, views=views, last_index=max(pulses - 1, 0),
                        fps=record.session.fps, events=events, table=event_table(events), window=WINDOW_FRAMES)

    def clip_info(request: Request) -> Response:
        sid = web.record_or_404(path_int(request, "session_id")).session.id
        view = view_param(request)
        try:
            info = client(view).clip_info(sid)
        except NodeOffline as e:
            return JSONResponse({"error": str(e), "offline": True}, status_code=503)
        except NodeRefused as e:
            return JSONResponse({"error": str(e)}, status_code=404 if e.status == 404 else 502)
        return JSONResponse(info)

    async def clip(request: Request) -> Response:
        sid = (await run_in_threadpool(web.record_or_404, path_int(request, "session_id"))).session.id
        view = view_param(request)
        try:
            first, last = protocol.parse_range(request.query_params.get("from"), request.query_params.get("to"))
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        node = await run_in_threadpool(client, view)
        await run_in_threadpool(audit, request, sid, f"fetch video clip: {view} view, frames {first}-{last}")
        try:
            chunks = await run_in_threadpool(node.frames, sid, first, last)
        except NodeOffline as e:
            return JSONResponse({"error": str(e), "offline": True}, status_code=503)
        except NodeRefused as e:
            return JSONResponse({"error": str(e)}, status_code=404 if e.status == 404 else 502)
        return StreamingResponse(chunks, media_type=protocol.CONTENT_TYPE)

    def keypoints(request: Request) -> Response:
        sid = web.record_or_404(path_int(request, "session_id")).session.id
        view = view_param(request)
        try:
            first, last = protocol.parse_range(request.query_params.get("from"), request.query_params.get("to"))
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        info = web.db.node_infos().get(view) or {}
        out = {}
        for idx, payload in web.db.keypoints_after(sid, view, first - 1, last - first + 1):
            if idx > last:
                break
            try:
                lm = decode_keypoints(payload).lm
            except PayloadError:
                continue
            if lm is not None:
                out[str(idx)] = [[_px(x), _px(y), round(float(v), 2)] for x, y, _, v in lm]
        return JSONResponse({"view": view, "width": info.get("width"), "height": info.get("height"),
                             "frames": out})

    clinical = Permission.CLINICAL
    return [
        Route("/sessions/{session_id}/review", guarded(clinical, review_page)),
        Route("/api/sessions/{session_id}/video/{view}", guarded(clinical, clip)),
        Route("/api/sessions/{session_id}/video/{view}/info", guarded(clinical, clip_info)),
        Route("/api/sessions/{session_id}/keypoints/{view}", guarded(clinical, keypoints)),
    ]


def _px(value: float) -> float | None:
    return round(float(value), 1) if math.isfinite(value) else None
