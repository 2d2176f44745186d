"""Claims on a partial grid (issue 24): each claim is decided on the comparisons whose cells have
runs, claims.csv's `scope` says what it was not decided on, and a claim with nothing left is
absent; a full grid reads and decides every claim as before."""

from __future__ import annotations

import copy
import logging

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.fake_runs import write_fake_runs
from workflow_src.analysis import __main__ as command
from workflow_src.analysis import claims
from workflow_src.spec import selection
from workflow_src.spec.grid import build_cells

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
CLAIMS_YAML = REPO_ROOT / "report" / "claims.yaml"
REGIME = list(selection.selected_cells({**copy.deepcopy(CONFIG), "preset": "regime"}))

# Three claims: one on all three tasks (2 of 3 to be reproduced), one on Quora alone, one on
# SST alone; runs of SST and STS cells only.
CLAIMS = """\
claims:
  - id: lr-all-tasks
    text: 1e-4 beats 1e-5 on two of the three tasks.
    at_least: 2
    compare:
      - {left: "{task}-lr1e-4", op: greater, right: "{task}-base"}
  - id: quora-only
    text: Dropout 0.1 beats 0.5 on Quora.
    compare:
      - {left: quora-dropout0.1, op: greater, right: quora-base, tasks: [quora]}
  - id: sst-only
    text: Dropout 0.1 is within 5 points of 0.5 on SST.
    compare:
      - {left: "{task}-dropout0.1", op: within, right: "{task}-base", margin: 5, tasks: [sst]}
"""
PRESENT = ["sst-base", "sst-lr1e-4", "sst-dropout0.1", "sts-base", "sts-lr1e-4"]
LR_SCOPE = (
    "Decided on 2 of its 3 comparisons, on sst, sts (not on quora): no runs of quora-base, "
    "quora-lr1e-4. At least 2 of the 2 kept must be reproduced (claims.yaml: 2 of 3)."
)


@pytest.fixture
def claims_yaml(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS)
    return path


def test_with_every_cell_of_the_grid_the_claims_read_as_without_cells():
    cells = set(build_cells(CONFIG["grid"]))
    every = claims.load_claims(CLAIMS_YAML)
    assert claims.load_claims(CLAIMS_YAML, known_cells=cells, cells=cells) == every
    assert all(claim.scope == "" for claim in every)


def test_a_claim_keeps_the_comparisons_whose_cells_have_runs_and_says_what_it_lacks(claims_yaml):
    kept = {claim.id: claim for claim in claims.load_claims(claims_yaml, cells=PRESENT)}
    assert list(kept) == ["lr-all-tasks", "sst-only"]  # quora-only: nothing left
    lr = kept["lr-all-tasks"]
    assert [c.task for c in lr.comparisons] == ["sst", "sts"] and lr.at_least == 2
    assert lr.scope == LR_SCOPE
    assert kept["sst-only"].scope == "" and kept["sst-only"].comparisons[0].margin == 5


def test_the_shipped_claims_on_the_regimes_cells_name_only_those_cells():
    everything = {claim.id: claim for claim in claims.load_claims(CLAIMS_YAML)}
    kept = claims.load_claims(CLAIMS_YAML, cells=REGIME)
    scopes = selection.claim_scopes(selection.load_document(CLAIMS_YAML), REGIME)
    assert [claim.id for claim in kept] == [i for i, scope in scopes.items() if scope.decided]
    assert "smart-no-gain" not in {claim.id for claim in kept}  # multi-task cells only
    for claim in kept:
        assert {t.cell for c in claim.comparisons for t in c.terms()} <= set(REGIME), claim.id
        assert set(claim.comparisons) <= set(everything[claim.id].comparisons), claim.id
        whole = claim.comparisons == everything[claim.id].comparisons
        assert claim.scope == scopes[claim.id].note and (claim.scope == "") == whole, claim.id
        assert 1 <= claim.at_least <= len(claim.comparisons)


def test_the_whole_file_is_checked_before_it_is_restricted(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS + "  - {id: bad, text: t, compare: [{op: more, left: a, right: b}]}\n")
    with pytest.raises(claims.ClaimsError, match=r"claim 'bad': op must be"):
        claims.load_claims(path, cells=PRESENT)
    with pytest.raises(claims.ClaimsError, match="unknown cells"):
        claims.load_claims(CLAIMS_YAML, known_cells={"sst-base"}, cells={"sst-base"})


def test_the_command_decides_a_partial_grid_on_the_tasks_it_has(tmp_path, claims_yaml, caplog):
    """Fake runs of SST and STS cells only: claims.csv has no missing comparison, the
    three-task claim is decided on SST and STS against its capped at_least, `scope` says so,
    and the Quora claim is absent (the log names it)."""
    write_fake_runs(tmp_path / "runs", "regime", [1, 2], cells=set(PRESENT))
    argv = ["--runs", str(tmp_path / "runs"), "--claims", str(claims_yaml)]
    with caplog.at_level(logging.INFO):
        assert command.main([*argv, "--out-dir", str(tmp_path / "out")]) == 0
    frame = pd.read_csv(tmp_path / "out" / "claims.csv", keep_default_na=False)
    assert list(frame.columns) == claims.CSV_COLUMNS
    assert frame.claim.tolist() == ["lr-all-tasks", "lr-all-tasks", "sst-only"]
    assert frame.task.tolist() == ["sst", "sts", "sst"]
    assert not frame.test.str.startswith("missing").any() and frame.difference.notna().all()
    assert frame.scope.tolist() == [LR_SCOPE, LR_SCOPE, ""]
    lr = frame[frame.claim == "lr-all-tasks"]
    (claim, _) = claims.load_claims(claims_yaml, cells=PRESENT)
    assert lr.claim_verdict.iloc[0] == claims.claim_verdict(claim, lr.verdict.tolist())
    assert "not decided, no runs of their cells: quora-only" in caplog.text
    assert "decided on some of their comparisons (claims.csv's scope): lr-all-tasks" in caplog.text


def test_the_command_on_every_cell_decides_every_claim_on_all_its_comparisons(tmp_path):
    """A full grid: the same rows as deciding claims.yaml read without cells, scope empty."""
    from workflow_src.analysis.outcomes import find_metrics, load_outcomes
    from workflow_src.analysis.verdicts import claims_frame, evaluate_runs

    write_fake_runs(tmp_path / "runs", "quick", [1, 2])
    argv = ["--runs", str(tmp_path / "runs"), "--claims", str(CLAIMS_YAML)]
    assert command.main([*argv, "--out-dir", str(tmp_path / "out")]) == 0
    written = pd.read_csv(tmp_path / "out" / "claims.csv", keep_default_na=False)
    outcomes = load_outcomes(find_metrics([tmp_path / "runs"]))
    expected = claims_frame(evaluate_runs(claims.load_claims(CLAIMS_YAML), outcomes))
    text = expected.to_csv(index=False, lineterminator="\n")
    assert (tmp_path / "out" / "claims.csv").read_text() == text
    assert (written.scope == "").all()
    assert list(dict.fromkeys(written.claim)) == [c.id for c in claims.load_claims(CLAIMS_YAML)]
