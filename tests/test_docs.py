"""The documents in docs/ are generated from the code; this keeps them in step."""
from __future__ import annotations

import pytest

from rig.docs import DOCS_DIR, documents


@pytest.mark.parametrize("name", sorted(documents()))
def test_committed_document_matches_the_code(name):
    committed = (DOCS_DIR / name).read_text(encoding="utf-8")
    assert committed == documents()[name].rstrip() + "\n", f"docs/{name} is stale: run `gaitrig docs`"


def test_every_topic_and_payload_is_documented():
    from rig.bus.payloads import JSON_PAYLOADS
    from rig.bus.topics import TOPICS
    text = documents()["mqtt.md"]
    assert all(f"`{t.pattern}`" in text for t in TOPICS)
    assert all(f"### {m.__name__}" in text for m in JSON_PAYLOADS)
