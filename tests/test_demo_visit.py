"""``gaitrig demo --visit``: one simulated patient walks a visit — barefoot, shoes, orthotic —
as real processes; each walk goes to the demo patient in its condition, no two walks have
the same strides, and the differences the demo's walker knobs set show in the reports and in
the comparison (cadence with shoes, rearfoot eversion with the orthotic)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rig.clinic.records import Records
from rig.clinic.store import ClinicStore
from rig.coordinator.storage import Storage
from rig.demo import DEMO_PATIENT, VISIT
from rig.gait import compare_reports


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo-visit")
    r = subprocess.run([sys.executable, "-m", "rig.cli", "demo", "--visit", "--json", "--walk-s", "8",
                        "--workdir", str(work)], capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    walks = [json.loads(line) for line in r.stdout.splitlines()]
    storage = Storage(work / "gaitrig.sqlite")
    reports = {w["session_id"]: json.loads(storage.report(w["session_id"])[0]) for w in walks}
    storage.close()
    return work, walks, reports, r.stderr


def test_the_demo_prints_the_tablet_address_and_a_login(visit):
    _, _, _, stderr = visit
    line = next(line for line in stderr.splitlines() if line.startswith("The clinician's tablet: http://127.0.0.1:"))
    assert "log in as 'demo' with the password '" in line


def test_the_three_walks_are_the_demo_patients_in_barefoot_shoes_and_orthotic(visit):
    work, walks, _, _ = visit
    assert [w["complete"] for w in walks] == [True, True, True]
    records = Records(ClinicStore(work / "clinic.sqlite"))
    patient = next(p for p in records.find(DEMO_PATIENT.name) if p.clinic_id == "DEMO-1")
    assigned = records.assignments(patient_id=patient.id)
    assert sorted(assigned) == [w["session_id"] for w in walks]
    assert [str(assigned[w["session_id"]].condition) for w in walks] == [
        "barefoot", "shoes: demo trainers", "orthotic: FootChair, arch 3"]
    assert [s.kind for s in VISIT] == ["barefoot", "shoes", "orthotic"]


def test_each_walk_has_its_own_strides(visit):
    _, walks, reports, _ = visit
    stride_times = [tuple(round(x, 4) for x in reports[w["session_id"]]["per_stride"]["left"]["stride_time_s"])
                    for w in walks]
    assert len(set(stride_times)) == 3
    for w in walks:
        sp = reports[w["session_id"]]["spatiotemporal"]
        assert sp["cv_pct"]["stride_time_s"]["left"] > 0.5  # stride-to-stride variability (2.5 % set)


def test_the_comparison_shows_what_shoes_and_the_orthotic_change(visit):
    _, walks, reports, _ = visit
    barefoot, shoes, orthotic = (reports[w["session_id"]] for w in walks)
    cadence = {k: r["spatiotemporal"]["cadence_steps_per_min"] for k, r in
               (("barefoot", barefoot), ("shoes", shoes), ("orthotic", orthotic))}
    assert cadence["barefoot"] == pytest.approx(114.0, abs=1.5)  # the knobs: 114 barefoot, 109 shod
    assert cadence["shoes"] == pytest.approx(109.0, abs=1.5)
    rows = {(r["measure"], r["side"]): r for r in compare_reports(shoes, orthotic)["measures"]}
    right = rows[("rearfoot_eversion_2d_deg", "right")]
    assert right["difference"] == pytest.approx(-2.0, abs=0.6) and right["changed"] is True  # 9.0° -> 7.0°
    rows = {(r["measure"], r["side"]): r for r in compare_reports(barefoot, shoes)["measures"]}
    assert rows[("cadence_steps_per_min", None)]["changed"] is True
    assert rows[("cadence_steps_per_min", None)]["difference"] == pytest.approx(-5.0, abs=2.0)
