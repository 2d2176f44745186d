"""`snakemake compare`: your runs of a preset against the shipped reproduction of it."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake
from workflow_src.analysis import compare
from workflow_src.render import compare as page

SHIPPED = REPO_ROOT / "reference" / "cpu"


def runs_frame(values: dict[str, list[float]], **columns) -> pd.DataFrame:
    """metrics.csv rows: cell -> per-seed best SST accuracy (fractions)."""
    rows = [
        {"path": f"/nowhere/{cell}/seed{seed}/metrics.json", "cell": cell, "seed": seed,
         "best_sst_accuracy": value, **columns}
        for cell, seeds in values.items()
        for seed, value in enumerate(seeds, start=1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_welch_interval_with_seeds_on_both_sides_and_the_flag_when_it_excludes_zero():
    shipped = runs_frame({"a": [0.50, 0.51, 0.49], "b": [0.50, 0.51, 0.49]})
    user = runs_frame({"a": [0.50, 0.52, 0.48], "b": [0.60, 0.61, 0.59]})
    rows = compare.compare_cells(user, shipped).set_index("cell")
    assert rows.loc["a", "difference"] == pytest.approx(0.0, abs=1e-9)
    assert rows.loc["a", "ci_low"] < 0 < rows.loc["a", "ci_high"] and not rows.loc["a", "outside"]
    assert rows.loc["b", "difference"] == pytest.approx(10.0)
    assert rows.loc["b", "ci_low"] > 0 and rows.loc["b", "outside"]
    assert (rows["basis"] == "Welch t on both sets' seeds").all()


def test_one_user_seed_is_judged_by_the_shipped_seeds_spread():
    shipped = runs_frame({"a": [0.50, 0.52, 0.48]})  # sd 2 points
    low, high, basis = compare.difference_interval(np.array([56.0]), np.array([50.0, 52, 48]))
    half = 4.302652729911275 * 2.0 * np.sqrt(1 + 1 / 3)  # t(0.975, 2) * sd * sqrt(1/1 + 1/3)
    assert (low, high) == pytest.approx((6 - half, 6 + half))
    assert "one user seed" in basis
    far = compare.compare_cells(runs_frame({"a": [0.70]}), shipped)
    assert bool(far.loc[0, "outside"])
    one = compare.difference_interval(np.array([50.0]), np.array([49.0]))
    assert np.isnan(one[0]) and "one shipped seed" in one[2]


def test_runs_of_another_preset_share_no_cell_and_are_refused():
    with pytest.raises(compare.CompareError, match="share no cell"):
        compare.compare_cells(runs_frame({"x": [0.5]}), runs_frame({"y": [0.5]}))


def test_machine_and_setting_differences_are_named_from_the_runs(tmp_path):
    """The precision a run actually used comes from its metrics.json compute block."""
    paths = []
    for name, precision in (("user", "fp32"), ("shipped", "bf16")):
        path = tmp_path / name / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"compute": {"precision": precision, "wall_seconds": 9}}))
        paths.append(path)
    user = runs_frame({"a": [0.5]}, threads=4, version_torch="2.14", lr=1e-5, precision="auto")
    shipped = runs_frame({"a": [0.5]}, threads=1, version_torch="2.13", lr=1e-5, precision="auto")
    user["path"], shipped["path"] = str(paths[0]), str(paths[1])
    found = {row["what"]: (row["user"], row["shipped"]) for row in
             compare.setting_differences(user, shipped)}  # fmt: skip
    assert found == {"precision": ("fp32", "bf16"), "threads": ("4", "1"),
                     "torch": ("2.14", "2.13"),
                     "cpu model": ("not recorded", "not recorded")}  # fmt: skip


def test_compare_without_a_shipped_reproduction_says_what_to_do(tmp_path):
    with pytest.raises(compare.CompareError, match=r"ship_reference=True.*compare_to=DIR"):
        compare.shipped_input(str(tmp_path), "metrics.csv", "quick")
    (tmp_path / "metrics.csv").write_text("path\n")
    assert compare.shipped_input(str(tmp_path), "metrics.csv", "quick").endswith("metrics.csv")


def test_the_page_says_in_one_sentence_whether_the_science_is_the_same(tmp_path):
    shipped = pd.read_csv(SHIPPED / "metrics.csv")
    user = shipped[shipped.seed == 1].copy()
    user.loc[user.cell == "sst-base", "best_sst_accuracy"] -= 0.05
    (tmp_path / "metrics.csv").write_text(user.to_csv(index=False))
    assert compare.main(
        ["--metrics-csv", str(tmp_path / "metrics.csv"), "--shipped-metrics-csv",
         str(SHIPPED / "metrics.csv"), "--output", str(tmp_path / "compare.csv"),
         "--machines-csv", str(tmp_path / "machines.csv")]
    ) == 0  # fmt: skip
    cells = pd.read_csv(tmp_path / "compare.csv")
    assert list(cells.columns) == compare.COLUMNS
    assert cells.loc[cells.outside, "cell"].tolist() == ["sst-base"]
    assert page.main(
        ["--compare-csv", str(tmp_path / "compare.csv"), "--claims-csv", str(SHIPPED / "claims.csv"),
         "--shipped-claims-csv", str(SHIPPED / "claims.csv"), "--machines-csv",
         str(tmp_path / "machines.csv"), "--claims", str(REPO_ROOT / "report" / "claims.yaml"),
         "--preset", "cpu", "--shipped-name", "reference/cpu", "--output", str(tmp_path / "c.html")]
    ) == 0  # fmt: skip
    html = (tmp_path / "c.html").read_text()
    claims = pd.read_csv(SHIPPED / "claims.csv").claim.nunique()
    assert (
        f"1 of {len(cells)} cell and task means lie outside what the shipped seeds&#39; spread "
        f"allows, and {claims} of {claims} claims get the same verdict on both sets."
    ) in html
    assert len(re.findall(r'<tr class="flag">', html)) == 1
    assert "<th>cpu model</th>" in html and "not recorded" in html


def test_snakemake_compare_plans_the_comparison_and_no_training(tmp_path):
    workflow = copy_workflow(tmp_path)
    result = run_snakemake(
        "compare", "-n", "--config", "preset=cpu", "runs_from=reference/cpu/runs",
        "compare_to=reference/cpu", cwd=workflow, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "compare_cells" in output and "render_compare" in output
    assert "train_cell" not in output
