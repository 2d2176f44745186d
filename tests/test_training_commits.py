"""Every earlier training commit that reference/training_commits.yaml lets ship gives today's
numbers: its own training code, checked out from history, trains the tiny golden cases and gets
tests/golden/'s values (which tests/test_golden_metrics.py holds for today's code), for every case
whose cell is not stale at that commit (issue 23 item 4: runs of an earlier commit ship only
where a test shows this).

SLOW (about a minute per commit, one core): `git archive` of each commit into a scratch folder,
then tests/golden/make_tiny_metrics.py's training command run there. Skipped where the clone's
history lacks the commit (a shallow clone); CI runs on a full clone.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT, archived
from tests.fault_injection.kill_resume import command
from tests.golden.tiny_cases import CASES, golden_path, values
from tests.test_golden_metrics import differences
from workflow_src.render.reference import load_commit_notes
from workflow_src.spec import grid

pytestmark = pytest.mark.slow

NOTES = load_commit_notes(REPO_ROOT / "reference" / "training_commits.yaml")


def test_every_listed_commit_names_its_evidence_and_only_grid_cells_as_stale():
    cells = grid.build_cells(yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["grid"])
    for commit, note in NOTES.items():
        assert len(commit) == 40 and note["evidence"]
        assert set(note.get("stale_cells", {})) <= set(cells), commit


@pytest.mark.parametrize("commit", sorted(NOTES), ids=[c[:7] for c in sorted(NOTES)])
def test_a_listed_commit_trains_the_golden_cases_to_todays_numbers(commit, tmp_path, shared_data):
    code = archived(commit, tmp_path / "code")
    stale = set(NOTES[commit].get("stale_cells", {}))
    cases = [case for case in CASES if case.cell not in stale]
    assert cases, f"{commit[:7]}: every golden case is stale there; nothing shows its numbers"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for case in cases:
        golden = json.loads(golden_path(case.name).read_text())
        settings = {**golden["settings"], "data_dir": str(shared_data)}
        run_dir = tmp_path / case.name
        subprocess.run(command(settings, run_dir, golden["seed"]), cwd=code, check=True, env=env)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        moved = differences(golden["values"], values(metrics))
        assert moved == [], f"{commit[:7]} {case.name}:\n" + "\n".join(moved[:20])
