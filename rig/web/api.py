"""The JSON the API serves: the database's rows as they are stored (times as Unix seconds,
the report exactly as the coordinator stored it), so other tools get the same numbers as the
pages without scraping them."""
from __future__ import annotations

from dataclasses import asdict

from rig.coordinator.storage import SessionRow

from .database import SessionListing, SessionRecord


def session_json(s: SessionRow) -> dict:
    return {**asdict(s), "duration_s": (s.ended_t - s.started_t) if s.ended_t is not None else None}


def listing_json(listing: SessionListing) -> dict:
    return {**session_json(listing.session), "frames": listing.frames, "analysed": listing.analysed,
            "analysis_error": listing.analysis_error, "cadence_steps_per_min": listing.cadence_steps_per_min,
            "findings_present": listing.findings_present, "findings_possible": listing.findings_possible}


def record_json(record: SessionRecord) -> dict:
    stored = record.stored
    return {"session": session_json(record.session),
            "nodes": [asdict(n) for n in record.nodes],
            "analysed": stored is not None,
            "belt_speed_m_s": stored.belt_speed_m_s if stored else None,
            "analysis_error": stored.error if stored else None,
            "report": stored.report if stored else None}
