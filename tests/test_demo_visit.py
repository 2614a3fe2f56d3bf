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
from rig.demo import DEMO_PATIENT, VISIT, visit_walker
from rig.gait import compare_reports
from rig.gait.suggestions import suggestions
from rig.sim.walker import SimulatedWalker
from rig.web.database import ReadOnlyDatabase


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo-visit")
    r = subprocess.run([sys.executable, "-m", "rig.cli", "demo", "--visit", "--json", "--workdir", str(work)],
                       capture_output=True, text=True, timeout=600)  # three walks of the default 12 s
    assert r.returncode == 0, r.stderr[-3000:]
    walks = [json.loads(line) for line in r.stdout.splitlines()]
    db = ReadOnlyDatabase(work / "gaitrig.sqlite")
    reports = {w["session_id"]: db.session(w["session_id"]).stored.report for w in walks}
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
        assert sp["cv_pct"]["stride_time_s"]["left"] > 0.5  # stride-to-stride variability (2 % set)


def test_each_walk_is_the_walker_of_its_condition_and_seed(visit):
    _, walks, reports, _ = visit
    for k, w in enumerate(walks):
        knobs = visit_walker(1.2, k)
        truth = SimulatedWalker(knobs.params(), fps=60.0, seed=knobs.seed).truth(0.0, w["pulses_sent"] / 60.0)
        assert reports[w["session_id"]]["spatiotemporal"]["cadence_steps_per_min"] == pytest.approx(
            truth.cadence_steps_per_min, rel=0.01)
        assert truth.rearfoot_eversion_deg == {"left": VISIT[k].walker["rearfoot_eversion_left_deg"],
                                               "right": VISIT[k].walker["rearfoot_eversion_right_deg"]}


def test_the_comparison_shows_what_shoes_and_the_orthotic_change(visit):
    _, walks, reports, _ = visit
    barefoot, shoes, orthotic = (reports[w["session_id"]] for w in walks)
    rows = {(r["measure"], r["side"]): r for r in compare_reports(barefoot, shoes)["measures"]}
    cadence = rows[("cadence_steps_per_min", None)]
    assert cadence["changed"] is True and -7.0 < cadence["difference"] < -2.0  # knobs: 114 -> 109 steps/min
    rows = {(r["measure"], r["side"]): r for r in compare_reports(shoes, orthotic)["measures"]}
    for side in ("left", "right"):  # knobs: 2° less eversion with the orthotic
        r = rows[("rearfoot_eversion_2d_deg", side)]
        assert r["difference"] == pytest.approx(-2.0, abs=0.7) and r["changed"] is True, side


def test_the_suggestions_follow_the_right_foot_from_pronated_to_neutral(visit):
    _, walks, reports, _ = visit
    right_foot = [next(s.answer for s in suggestions(reports[w["session_id"]])
                       if s.kind == "foot_type" and s.side == "right") for w in walks]
    assert right_foot == ["pronated", "pronated", "neutral"]  # 9.5°, 9.0°, then 7.0° with the orthotic
    for w in walks:  # the 3° obliquity the orthotic leaves as it was
        lift = next(s for s in suggestions(reports[w["session_id"]]) if s.kind == "heel_lift")
        assert lift.answer == "consider a right heel lift"


def test_the_walker_script_is_read_at_each_new_train_and_a_bad_one_changes_nothing(tmp_path):
    from rig.sim.scene import WalkerScene
    from rig.sim.walker import WalkerParams
    script = tmp_path / "walker.toml"
    scene = WalkerScene("rear", WalkerParams(), seed=0, script=script)
    script.write_text("[walker]\nrearfoot_eversion_right_deg = 9.0\nseed = 5\n")
    scene.new_train()
    assert (scene.params.rearfoot_eversion_right_deg, scene.seed, scene.walker(60.0).seed) == (9.0, 5, 5)
    script.write_text("[walker]\nrearfoot_eversion_right_deg = 99.0\n")  # out of range
    scene.new_train()
    assert (scene.params.rearfoot_eversion_right_deg, scene.seed) == (9.0, 5)
    script.unlink()
    scene.new_train()
    assert scene.params.rearfoot_eversion_right_deg == 9.0
