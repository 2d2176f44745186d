"""The experiment grid reproduces the paper's tables cell for cell (workflow_src/spec/grid.py)."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from tests.conftest import REPO_ROOT, SHARED, SHARED_DATA
from workflow_src.spec import grid

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
PAPER = SHARED / "paper" / "multitask-bert-paper.md"


def paper_tables() -> dict[int, tuple[list[str], list[str]]]:
    """{table number: (column headers, row labels)} parsed from the paper's markdown."""
    if not PAPER.exists():
        pytest.skip(f"paper not found at {PAPER}")
    lines = PAPER.read_text().splitlines()
    tables = {}
    for i, line in enumerate(lines):
        match = re.match(r"Table (\d+):", line)
        if not match or int(match.group(1)) == 1:
            continue
        block = []
        for row in lines[i + 2 :]:
            if "\t" not in row:
                break
            block.append([re.sub(r"</?b>", "", field).strip() for field in row.split("\t")])
        header, *rows = block
        tables[int(match.group(1))] = (header[1:], [row[0] for row in rows])
    return tables


def test_every_table_has_the_papers_rows_and_columns():
    built = grid.build_tables(CONFIG["grid"])
    for number, (columns, rows) in paper_tables().items():
        table = built[number]
        assert list(table.columns) == columns, f"Table {number}"
        assert [row.label for row in table.rows] == rows, f"Table {number}"


def test_cells_shared_between_tables_run_once_and_total_41():
    """Table cells: 3+9+9+9+12+4+6+6 = 58; the base cell repeats in Tables 3-8 and each
    multi-task run fills a whole column of Table 9, leaving 41 distinct training runs."""
    tables = grid.build_tables(CONFIG["grid"])
    shown = sum(len(row.cells) for table in tables.values() for row in table.rows)
    assert shown == 58
    distinct = grid.cells_for_tables(CONFIG, range(2, 10))
    assert len(distinct) == len(set(distinct)) == 41
    supplementary = {cell for cell, _, _ in grid.supplementary_cells(CONFIG["grid"])}
    assert supplementary == {
        "sst-constant-lr",
        "quora-constant-lr",
        "sts-constant-lr",
        "quora-all-data",
    }
    assert set(distinct) | supplementary == set(grid.build_cells(CONFIG["grid"]))
    for task in ("sst", "quora", "sts"):
        for number in (3, 4, 5, 6, 8):
            assert f"{task}-base" in tables[number].cells()
    assert "sts-base" in tables[7].cells()


def test_cell_settings_layer_base_preset_and_cell():
    settings = grid.cell_settings(CONFIG, "sst-lr1e-4")
    assert settings["lr"] == 1e-4  # the sweep's largest rate, at every lr_scale
    assert settings["dropout"] == CONFIG["grid"]["base"]["dropout"]
    assert settings["encoder"] == CONFIG["presets"][CONFIG["preset"]]["encoder"]
    assert settings["tasks"] == ["sst"]
    assert settings["run_name"] == "sst-lr1e-4"


def test_epochs_keep_their_ratio_at_every_preset():
    for preset in CONFIG["presets"]:
        config = {**CONFIG, "preset": preset}
        epochs = [
            grid.cell_settings(config, cell)["epochs"]
            for cell in ("sst-base", "sst-epochs20", "sst-epochs30")
        ]
        assert epochs[1] == 2 * epochs[0] and epochs[2] == 3 * epochs[0], preset


def test_cpu_preset_trains_full_sst_and_sts_and_quora_at_the_size_of_sst():
    """Issue 11: full SST and STS train and dev sets, Quora train capped at SST train's size
    (the paper's single-task sample; the multi-task cells get as many), >= 5,000 Quora dev
    pairs, 3 seeds."""
    preset = CONFIG["presets"]["cpu"]
    rows = {
        name: sum(1 for _ in (SHARED_DATA / name).open()) - 1  # minus the header
        for name in ("ids-sst-train.csv", "ids-sst-dev.csv", "sts-train.csv", "sts-dev.csv")
    }
    assert preset["train_limit"] == rows["ids-sst-train.csv"] >= rows["sts-train.csv"]
    assert preset["dev_limit"] >= max(rows["ids-sst-dev.csv"], rows["sts-dev.csv"], 5000)
    assert preset["seeds"] == [1, 2, 3] and preset["encoder"] == "embedded"


def test_only_single_task_quora_cells_downsample():
    assert grid.cell_settings(CONFIG, "quora-base")["downsample_quora_to_sst"] is True
    assert grid.cell_settings(CONFIG, "multitask-additive")["downsample_quora_to_sst"] is False
    assert grid.cell_settings(CONFIG, "sst-base")["downsample_quora_to_sst"] is False


def test_table8_adamw_swaps_only_the_optimiser():
    adamw = grid.cell_settings(CONFIG, "sts-adamw")
    base = grid.cell_settings(CONFIG, "sts-base")
    changed = {key for key in base if base[key] != adamw[key]}
    assert changed == {"optimizer", "weight_decay", "run_name"}
    assert adamw["schedule"] == base["schedule"] == "cosine"


def test_constant_lr_cells_swap_only_the_schedule():
    for task in ("sst", "quora", "sts"):
        base = grid.cell_settings(CONFIG, f"{task}-base")
        constant = grid.cell_settings(CONFIG, f"{task}-constant-lr")
        assert {k for k in base if base[k] != constant[k]} == {"schedule", "run_name"}
        assert constant["schedule"] == "constant" and constant["optimizer"] == "adam"


def test_quora_all_data_differs_from_quora_base_only_in_the_rows_it_trains_on():
    base = grid.cell_settings(CONFIG, "quora-base")
    all_data = grid.cell_settings(CONFIG, "quora-all-data")
    differ = {k for k in base if base[k] != all_data[k]}
    preset = CONFIG["presets"][CONFIG["preset"]]
    cap = {"train_limit"} if preset["train_limit"] != preset.get("all_data_limit") else set()
    assert differ == {"downsample_quora_to_sst", "run_name"} | cap
    assert all_data["downsample_quora_to_sst"] is False


def test_multitask_settings_are_the_best_mean_over_tasks_of_tables_3_to_8():
    """Each tuned value is the column of its table with the highest mean of the three tasks
    (Table 7: the best STS head), computed from the paper's numbers."""
    paper = yaml.safe_load((REPO_ROOT / "report" / "paper_results.yaml").read_text())["tables"]

    def best(number):
        columns, rows = paper[number]["columns"], paper[number]["rows"]
        means = [sum(row[i] for row in rows.values()) / len(rows) for i in range(len(columns))]
        return columns[means.index(max(means))]

    values = {
        "dropout": {f"Dropout={v:g}": v for v in CONFIG["grid"]["dropout"]}[best(3)],
        "lr": {f"lr={grid.slug(v)}": v for v in CONFIG["grid"]["lr"]}[best(4)],
        "epochs": {f"epoch={v}": v for v in CONFIG["grid"]["epochs"]}[best(5)],
        "finetune": {grid.FINETUNE_LABELS[v]: v for v in CONFIG["grid"]["finetune"]}[best(6)],
        "sts_head": {grid.STS_HEAD_LABELS[v]: v for v in CONFIG["grid"]["sts_head"]}[
            max(paper[7]["rows"], key=lambda row: paper[7]["rows"][row][0])
        ],
        "optimizer": {"AdamW": "adamw", "CosineAnnealing": "adam"}[best(8)],
    }
    assert CONFIG["grid"]["multitask"]["tuned"] == values
    settings = grid.cell_settings({**CONFIG, "preset": "cpu"}, "multitask-additive")
    scale = CONFIG["presets"]["cpu"]["epoch_scale"]
    assert settings["epochs"] == max(1, round(values["epochs"] * scale))
    assert {k: settings[k] for k in ("dropout", "lr", "finetune", "sts_head", "optimizer")} == {
        k: values[k] for k in ("dropout", "lr", "finetune", "sts_head", "optimizer")
    }


def test_multitask_cells_train_all_tasks_and_only_one_uses_smart():
    plain = grid.cell_settings(CONFIG, "multitask-additive")
    smart = grid.cell_settings(CONFIG, "multitask-smart")
    assert plain["tasks"] == smart["tasks"] == ["sst", "quora", "sts"]
    assert "smart" not in plain
    assert smart["smart"]["enabled"] is True


def test_bilstm_cells_keep_their_own_batch_size():
    settings = grid.cell_settings(CONFIG, "sst-bilstm")
    assert settings["model"] == "bilstm"
    assert settings["batch_size"] == CONFIG["grid"]["bilstm"]["batch_size"]
    assert grid.cell_settings(CONFIG, "quora-bilstm")["pair_encoding"] == "joint"  # one sequence


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-5, "1e-5"),
        (1e-4, "1e-4"),
        (2.5e-5, "2.5e-5"),
        (0.1, "0.1"),
        (20, "20"),
        ("last2", "last2"),
    ],
)
def test_slug_is_short_and_path_safe(value, text):
    assert grid.slug(value) == text


def test_every_value_a_user_adds_to_an_axis_gets_its_own_cell():
    """Values that round alike (1.1e-5, 1.5e-5 next to 1e-5, 2e-5) stay apart: one cell each."""
    lrs = [1e-5, 1.1e-5, 1.5e-5, 2e-5, 1e-4]
    cells = grid.build_cells({**CONFIG["grid"], "lr": lrs})
    ids = {grid.variant_cell("sst", "lr", lr, CONFIG["grid"]["base"]) for lr in lrs}
    assert len(ids) == len(lrs) and ids <= set(cells)
    assert {cells[i].overrides.get("lr", CONFIG["grid"]["base"]["lr"]) for i in ids} == set(lrs)


@pytest.mark.parametrize("preset", sorted(CONFIG["presets"]))
def test_every_cell_at_every_preset_is_a_valid_training_config(preset):
    from workflow_src.spec.config import TrainConfig

    config = {**CONFIG, "preset": preset}
    for cell in grid.build_cells(CONFIG["grid"]):
        settings = TrainConfig.from_dict(grid.cell_settings(config, cell))
        assert settings.preset == preset and settings.run_name == cell


def test_the_table_layout_keys_alone_lay_out_every_table():
    """The renderers get only grid.table_layout_json (so a training-only setting re-renders
    just the tables whose runs it changes); from it they build the same tables as from the
    whole grid, and a training-only key does not enter it."""
    import json

    layout = json.loads(grid.table_layout_json(CONFIG["grid"]))
    assert grid.build_tables(layout) == grid.build_tables(CONFIG["grid"])
    changed = {**CONFIG["grid"], "adamw_weight_decay": 0.5}
    assert grid.table_layout_json(changed) == grid.table_layout_json(CONFIG["grid"])


# ----------------------------------------------------------------------------- extra axes


def overlaid(**axes) -> dict:
    """The shipped grid with a config overlay's extra axes (what `--configfile` merges in)."""
    grid = copy.deepcopy(CONFIG["grid"])
    return {**grid, **axes}


def test_without_an_overlay_the_grid_has_only_the_papers_tables():
    from workflow_src.spec.grid import EXTRA_AXES, table_numbers

    grid = overlaid()
    assert table_numbers(grid) == list(range(1, 10))
    assert not any(key in grid for key in EXTRA_AXES)


def test_a_new_axis_in_an_overlay_adds_cells_and_its_own_table():
    """`grid: {pair_encoding: [separate, joint]}`: joint cells for the pair tasks (SST has one
    sentence), Table 11 beside them, the separate column being the base cells."""
    from workflow_src.spec.grid import build_cells, build_tables, table_layout_json, table_numbers

    grid = overlaid(pair_encoding=["separate", "joint"])
    new = set(build_cells(grid)) - set(build_cells(overlaid()))
    assert new == {"quora-pair-joint", "sts-pair-joint"}
    assert build_cells(grid)["sts-pair-joint"].overrides == {"pair_encoding": "joint"}
    table = build_tables(grid)[11]
    assert table.columns == ("pair_encoding=separate", "pair_encoding=joint")
    assert [row.cells for row in table.rows] == [
        ("quora-base", "quora-pair-joint"),
        ("sts-base", "sts-pair-joint"),
    ]
    assert table_numbers(grid) == [*range(1, 10), 11]
    assert json.loads(table_layout_json(grid))["pair_encoding"] == ["separate", "joint"]


def test_a_task_schedule_axis_varies_the_additive_multitask_cell():
    from workflow_src.spec.grid import build_cells, build_tables, cell_settings

    grid = overlaid(task_schedule=["round_robin", "proportional"])
    cells = build_cells(grid)
    assert cells["multitask-schedule-proportional"].tasks == ("sst", "quora", "sts")
    table = build_tables(grid)[12]
    assert {row.cells for row in table.rows} == {
        ("multitask-additive", "multitask-schedule-proportional")
    }
    config = {**CONFIG, "grid": grid}
    settings = cell_settings(config, "multitask-schedule-proportional")
    additive = cell_settings(config, "multitask-additive")
    assert settings["task_schedule"] == "proportional"
    assert {k: v for k, v in settings.items() if k not in ("task_schedule", "run_name")} == {
        k: v for k, v in additive.items() if k not in ("task_schedule", "run_name")
    }


def test_a_new_value_on_a_paper_axis_is_a_new_column():
    from workflow_src.spec.grid import build_tables

    table = build_tables(overlaid(dropout=[0.1, 0.3, 0.5, 0.7]))[3]
    assert table.columns[-1] == "Dropout=0.7"
    assert table.rows[0].cells[-1] == "sst-dropout0.7"


def test_a_preset_head_lr_reaches_the_bert_cells_only():
    config = {**CONFIG, "presets": {**CONFIG["presets"]}}
    config["presets"]["quick"] = {**CONFIG["presets"]["quick"], "head_lr": 1e-3, "lr_scale": 1}
    config["preset"] = "quick"
    assert grid.cell_settings(config, "sst-lr1e-6")["head_lr"] == 1e-3
    assert grid.cell_settings(config, "sst-lr1e-6")["lr"] == 1e-6  # the encoder keeps its rate
    assert grid.cell_settings(config, "multitask-smart")["head_lr"] == 1e-3
    assert "head_lr" not in grid.cell_settings(config, "sst-bilstm")
    config["presets"]["quick"]["head_lr"] = None
    assert "head_lr" not in grid.cell_settings(config, "sst-base")  # null: the paper's one rate


def test_the_base_cell_of_a_task_is_the_one_every_sweep_shares():
    base = CONFIG["grid"]["base"]
    for task in CONFIG["grid"]["tasks"]:
        assert grid.base_cell(task) == f"{task}-base"
        for key in ("dropout", "lr", "epochs", "finetune"):
            assert grid.variant_cell(task, key, base[key], base) == grid.base_cell(task)
        assert grid.build_cells(CONFIG["grid"])[grid.base_cell(task)].overrides == {}


@pytest.mark.parametrize("preset", ["cpu", "regime", "paper"])
def test_quora_all_data_is_the_one_cell_exempt_from_the_preset_train_cap(preset):
    """Issue 23: under the cap quora-all-data would train on quora-base's rows; at the evidence
    presets it trains on every Quora train row the data has, and `snakemake cost` counts them."""
    from workflow_src.spec import cost

    config = {**copy.deepcopy(CONFIG), "preset": preset}
    cells = grid.build_cells(config["grid"])
    limit = config["presets"][preset]["train_limit"]
    uncapped = [c for c in cells if grid.cell_settings(config, c, cells)["train_limit"] != limit]
    assert uncapped == (["quora-all-data"] if limit is not None else [])
    settings = grid.cell_settings(config, "quora-all-data", cells)
    assert settings["train_limit"] is None and not settings["downsample_quora_to_sst"]
    assert cost.examples(settings)["quora"][0] == cost.DATA_SIZES["quora"][0]


@pytest.mark.parametrize("preset", ["tiny", "quick"])
def test_a_pipeline_check_bounds_quora_all_data_above_quora_base(preset):
    """Issue 27: the 14,000-row stand-in was a fifth of the default run; a pipeline check
    keeps the cell's direction (more rows than quora-base) at all_data_limit."""
    config = {**copy.deepcopy(CONFIG), "preset": preset}
    settings = grid.cell_settings(config, "quora-all-data")
    limit = config["presets"][preset]["all_data_limit"]
    assert (
        settings["train_limit"] == limit > grid.cell_settings(config, "quora-base")["train_limit"]
    )


def test_multitask_epochs_replaces_only_the_multitask_cells_epochs():
    config = {**copy.deepcopy(CONFIG), "preset": "quick"}
    quick = config["presets"]["quick"]
    cells = grid.build_cells(config["grid"])
    epochs = {cell: grid.cell_settings(config, cell, cells)["epochs"] for cell in cells}
    assert {c: e for c, e in epochs.items() if len(cells[c].tasks) > 1} == {
        "multitask-additive": quick["multitask_epochs"],
        "multitask-smart": quick["multitask_epochs"],
    }
    config["presets"]["quick"] = {**quick, "multitask_epochs": None}
    unset = {cell: grid.cell_settings(config, cell, cells)["epochs"] for cell in cells}
    assert {c for c in cells if unset[c] != epochs[c]} == {"multitask-additive", "multitask-smart"}


def test_a_preset_lr_scale_multiplies_the_bert_cells_rates_only():
    config = {**CONFIG, "presets": {**CONFIG["presets"]}}
    config["presets"]["quick"] = {**CONFIG["presets"]["quick"], "lr_scale": 10}
    config["preset"] = "quick"
    assert grid.cell_settings(config, "sst-base")["lr"] == 1e-4
    assert grid.cell_settings(config, "sst-lr1e-6")["lr"] == 1e-5
    # never past the sweep's largest rate (1e-3 collapses the STS regression)
    assert grid.cell_settings(config, "sts-lr1e-4")["lr"] == max(CONFIG["grid"]["lr"]) == 1e-4
    assert grid.cell_settings(config, "multitask-smart")["lr"] == 1e-4
    bilstm_lr = CONFIG["grid"]["bilstm"]["lr"]
    assert grid.cell_settings(config, "sst-bilstm")["lr"] == bilstm_lr
    config["presets"]["quick"] = {**config["presets"]["quick"], "lr_scale": 1}
    quick = {k: v for k, v in config["presets"]["quick"].items() if k != "lr_scale"}
    unscaled = {**config, "presets": {**config["presets"], "quick": quick}}
    # 1 leaves the settings as without the key: no cell of a preset without it reruns.
    assert grid.cell_settings(config, "sst-base") == grid.cell_settings(unscaled, "sst-base")
