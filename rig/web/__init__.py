"""The clinicians' tablet pages: a small Starlette app behind log-ins that reads the
coordinator's SQLite database read-only and renders the gait reports as HTML with inline SVG
charts (works offline; one small local script for the live walk), patients and conditions
from the clinic file (:mod:`rig.clinic`), PDF and CSV downloads, and a JSON API.
``gaitrig web`` serves it (rig.web.server); docs/tablet.md says what the clinician sees."""
from .app import create_app

__all__ = ["create_app"]
