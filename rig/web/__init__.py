"""The clinicians' tablet pages: a small Starlette app that reads the coordinator's SQLite
database read-only and renders the gait reports as HTML with inline SVG charts (no scripts,
no downloads, works offline), plus a JSON API. ``gaitrig web`` serves it (rig.web.server);
docs/tablet.md says what the clinician sees."""
from .app import create_app

__all__ = ["create_app"]
