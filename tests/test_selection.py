"""A preset's subset of the grid, and what a partial grid's cells decide (workflow_src/spec/selection.py)."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.fake_runs import write_fake_runs
from workflow_src.analysis import claims, outcomes, verdicts
from workflow_src.spec import grid, selection

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
CLAIMS_YAML = REPO_ROOT / "report" / "claims.yaml"
DOCUMENT = selection.load_document(CLAIMS_YAML)


def with_subset(subset: dict | None, preset: str = "cpu") -> dict:
    config = copy.deepcopy(CONFIG)
    config["preset"] = preset
    if subset is None:
        config["presets"][preset].pop("subset", None)
    else:
        config["presets"][preset]["subset"] = subset
    return config


def selected(subset: dict | None) -> list[str]:
    return list(selection.selected_cells(with_subset(subset), CLAIMS_YAML))


# ----------------------------------------------------------------------------- claims.yaml


def test_the_reader_expands_every_comparison_as_the_claims_analysis_does():
    """Same comparisons, same tasks, same cells as workflow_src.analysis.claims reads them."""
    analysed = claims.load_claims(CLAIMS_YAML)
    read = {e["id"]: selection.comparison_cells(e) for e in DOCUMENT["claims"]}
    assert list(read) == [claim.id for claim in analysed]
    for claim in analysed:
        ours = [(c.task, set(c.cells)) for c in read[claim.id]]
        theirs = [(c.task, {t.cell for t in c.terms()}) for c in claim.comparisons]
        assert ours == theirs, claim.id


def test_a_side_names_its_cells_with_or_without_a_task():
    side = "multitask-additive:sts - {task}-base:{task}"
    assert selection.side_cells(side, "sst") == ["multitask-additive", "sst-base"]


# ----------------------------------------------------------------------------- cells


def test_without_a_subset_a_preset_has_every_cell():
    assert selected(None) == list(grid.build_cells(CONFIG["grid"]))


def test_listed_cells_and_the_cells_of_listed_claims_on_their_tasks_in_table_order():
    cells = selected({"cells": ["sst-adamw"], "claims": ["lr-1e-6-worst"], "claim_tasks": ["sst"]})
    assert cells == ["sst-base", "sst-lr1e-4", "sst-lr1e-6", "sst-adamw"]
    on_sts = selected({"claims": ["all-layers-preferred"], "claim_tasks": ["sts", "sst"]})
    assert on_sts == ["sts-base", "sts-finetune-last2"]  # the claim compares quora and sts only
    every_task = selected({"claims": ["bert-beats-bilstm"]})
    assert set(every_task) == {
        f"{t}-{c}" for t in ("sst", "quora", "sts") for c in ("base", "bilstm")
    }


@pytest.mark.parametrize(
    ("subset", "named"),
    [
        (
            {"cells": ["sst-base", "sst-lr1e-7"]},
            "presets.cpu.subset.cells': not in the grid: sst-lr1e-7.",
        ),
        (
            {"claims": ["lr-is-everything"]},
            "subset.claims': not in report/claims.yaml: lr-is-everything.",
        ),
        ({"claims": ["smart-lowers-sts"], "claim_tasks": ["sst"]}, "compares nothing"),
        ({"cells": [], "claims": []}, "selects no cell"),
    ],
)
def test_a_subset_naming_what_is_not_there_is_refused_naming_its_key(subset, named):
    with pytest.raises(selection.SelectionError, match="config key") as error:
        selected(subset)
    assert named in str(error.value)


def test_a_claim_whose_cells_the_grid_lacks_is_refused():
    config = with_subset({"claims": ["lr-1e-6-worst"]})
    config["grid"]["lr"] = [1.0e-4, 1.0e-5]  # an overlay without the 1e-6 cells
    with pytest.raises(selection.SelectionError, match="sst-lr1e-6"):
        selection.selected_cells(config, CLAIMS_YAML)


# ----------------------------------------------------------------------------- tables


def test_tables_without_their_cells_are_skipped_and_a_full_grid_shows_them_all():
    everything = list(grid.build_cells(CONFIG["grid"]))
    assert selection.table_numbers(CONFIG, everything) == grid.table_numbers(CONFIG["grid"])
    some = ["sst-base", "sts-base", "sst-lr1e-4", "sts-head-cosine"]
    assert selection.table_numbers(CONFIG, some) == [1, 4, 7]  # 3, 5, 6, 8: base cells alone
    assert selection.table_cells(CONFIG, 4, some) == ["sst-lr1e-4", "sst-base", "sts-base"]
    assert selection.table_cells(CONFIG, 1, some) == []


def test_a_table_whose_only_column_is_the_base_cell_is_shown_when_complete():
    narrow = {**CONFIG, "grid": {**CONFIG["grid"], "epochs": [10]}}
    cells = list(grid.build_cells(narrow["grid"]))
    assert 5 in selection.table_numbers(narrow, cells)


# ----------------------------------------------------------------------------- claims


REGIME_LIKE = ["sst-base", "sst-dropout0.1", "sts-base", "sts-dropout0.1", "sts-head-multiply"]


def test_a_claim_is_decided_on_the_comparisons_whose_cells_are_present_and_says_so():
    scopes = selection.claim_scopes(DOCUMENT, REGIME_LIKE)
    lower = scopes["lower-dropout-two-tasks"]
    assert lower.tasks == ("sst", "sts") and lower.missing == ("quora-base", "quora-dropout0.1")
    assert (lower.at_least, lower.written_at_least) == (2, 2)
    assert lower.note == (
        "Decided on 2 of its 3 comparisons, on sst, sts (not on quora): no runs of quora-base, "
        "quora-dropout0.1. At least 2 of the 2 kept must be reproduced (claims.yaml: 2 of 3)."
    )
    head = scopes["dot-product-head-best"]  # one task, two of three comparisons missing
    assert (len(head.kept), head.at_least, head.written_at_least) == (1, 1, None)
    assert head.note == (
        "Decided on 1 of its 3 comparisons, on sts: no runs of sts-head-cosine, "
        "sts-head-difference."
    )
    assert scopes["smart-no-gain"].note.startswith("Not decided: no runs of multitask-")
    complete = selection.claim_scopes(DOCUMENT, grid.build_cells(CONFIG["grid"]))
    assert all(scope.note == "" for scope in complete.values())


def test_restricted_claims_read_as_claims_yaml_and_name_only_cells_present(tmp_path):
    document, notes = selection.restrict_claims(DOCUMENT, REGIME_LIKE)
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(document))
    kept = claims.load_claims(path, known_cells=set(REGIME_LIKE))
    assert [c.id for c in kept] == [
        "dropout-small-effect",
        "lower-dropout-two-tasks",
        "dot-product-head-best",
    ]
    assert [c.task for c in kept[1].comparisons] == ["sst", "sts"] and kept[1].at_least == 2
    assert set(notes) == {claim["id"] for claim in DOCUMENT["claims"]}  # every claim is short
    assert selection.load_document(CLAIMS_YAML) == DOCUMENT  # the input is left as it was


def test_restricted_claims_are_decided_without_missing_comparisons(tmp_path):
    paths = write_fake_runs(tmp_path, "cpu", (1, 2), cells=set(REGIME_LIKE))
    document, _ = selection.restrict_claims(DOCUMENT, REGIME_LIKE)
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(document))
    results = verdicts.evaluate_runs(
        claims.load_claims(tmp_path / "claims.yaml"), outcomes.load_outcomes(paths)
    )
    assert results and all(not r.missing for claim in results for r in claim.results)
