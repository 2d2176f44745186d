"""The paper's experiment grid: which cells exist, their settings, and which cells each table needs.

The single source of truth for the rules, the tables and the report. A *cell* is one training
configuration (one job per seed); its id names its folder under `results/runs/<preset>/`.
Cells shared by several tables (the base configuration appears in Tables 3-6 and 8) exist once.
No torch here: rendering and the DAG import this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial

from workflow_src.spec.tasks import TASK

DATA_DIR = "data/cs224n"
MULTITASK = "multitask"
TASK_NAMES = {  # row labels as the paper prints them
    "sst": "Sentiment Analysis",
    "quora": "Paraphrase detection",
    "sts": "Semantic Textual Similarity",
}


@dataclass(frozen=True)
class Row:
    label: str  # row header as printed in the paper
    task: str  # whose primary metric the row shows
    cells: tuple[str, ...]  # one cell id per column


@dataclass(frozen=True)
class Table:
    number: int
    caption: str  # the paper's caption
    columns: tuple[str, ...]  # column headers as printed in the paper
    rows: tuple[Row, ...]
    row_header: str = "Task"
    bold: str = "row"  # where the paper marks the best value: "row", "column" or "none"
    label: str = ""  # heading, when not "Table <number>" (a supplement to that table)

    def cells(self) -> list[str]:
        return list(dict.fromkeys(cell for row in self.rows for cell in row.cells))


@dataclass(frozen=True)
class Cell:
    id: str
    tasks: tuple[str, ...]
    overrides: dict = field(hash=False)  # settings that differ from grid.base (paper units)


def slug(value) -> str:
    """Short, path-safe text for a setting's value: 1e-05 -> 1e-5, 2.5e-05 -> 2.5e-5, 0.1 -> 0.1.

    Lossless to 12 significant digits: two values of an axis never share a cell id (a
    rounded id would merge a user's 1.5e-5 into the 2e-5 cell).
    """
    if isinstance(value, float) and value < 1e-3:
        mantissa, exponent = f"{value:.12e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.12g}" if isinstance(value, float) else str(value)


CELL_PREFIX = {
    "dropout": "dropout",
    "lr": "lr",
    "epochs": "epochs",
    "finetune": "finetune-",
    "sts_head": "head-",
    "pooling": "pooling-",
    "pair_encoding": "pair-",
    "task_schedule": "schedule-",
}


@dataclass(frozen=True)
class ExtraAxis:
    """A setting TrainConfig supports that the paper does not vary. Listing values for it in
    the grid (a config overlay: `grid: {pair_encoding: [separate, joint]}`) adds one cell per
    value and task, and one table numbered after the paper's; the base value's column is the
    base cell (for task_schedule: the Additive Loss cell of Table 9)."""

    number: int  # fixed, so a table keeps its number whichever other axes are listed
    caption: str
    trains: str  # single: single-task cells of every task; pair: of pair tasks; multitask


EXTRA_AXES = {
    "pooling": ExtraAxis(10, "Extension (not in the paper): sentence pooling", "single"),
    "pair_encoding": ExtraAxis(
        11, "Extension (not in the paper): one pass per sentence or one per pair", "pair"
    ),
    "task_schedule": ExtraAxis(
        12, "Extension (not in the paper): multi-task schedule of the additive loss", "multitask"
    ),
}


def extra_axis_tasks(key: str, grid: dict) -> tuple[str, ...]:
    """Tasks whose single-task cells an extra axis varies (pair_encoding: pair tasks only)."""
    if EXTRA_AXES[key].trains == "pair":
        return tuple(task for task in grid["tasks"] if TASK[task].sentences == 2)
    return tuple(grid["tasks"])


def multitask_cell(grid: dict, schedule: str) -> str:
    """The additive multi-task cell with `schedule` (the configured one is Table 9's)."""
    if schedule == grid["multitask"]["task_schedule"]:
        return f"{MULTITASK}-additive"
    return f"{MULTITASK}-{CELL_PREFIX['task_schedule']}{slug(schedule)}"


def base_cell(task: str) -> str:
    """The cell of `task` at the base configuration (shared by Tables 3-6 and 8)."""
    return f"{task}-base"


def variant_cell(task: str, key: str, value, base: dict) -> str:
    """Cell id for `task` with one setting changed; the base value maps to the shared base cell."""
    if value == base[key]:
        return base_cell(task)
    return f"{task}-{CELL_PREFIX[key]}{slug(value)}"


def build_cells(grid: dict) -> dict[str, Cell]:
    """Every cell of Tables 2-9, keyed by id, in table order."""
    base = grid["base"]
    cells: dict[str, Cell] = {}

    def add(cell_id: str, tasks: tuple[str, ...], overrides: dict) -> None:
        cells.setdefault(cell_id, Cell(cell_id, tasks, overrides))

    bilstm = grid["bilstm"]
    for task in grid["tasks"]:
        add(
            f"{task}-bilstm",
            (task,),
            {
                "model": "bilstm",
                # Paper section 4: pair tasks concatenate the two token sequences.
                "pair_encoding": "joint",
                "lr": bilstm["lr"],
                "batch_size": bilstm["batch_size"],
                "dropout": bilstm["dropout"],
                "lstm_embedding_dim": bilstm["embedding_dim"],
                "lstm_hidden_dim": bilstm["hidden_dim"],
            },
        )
    for task in grid["tasks"]:
        for key in ("dropout", "lr", "epochs", "finetune"):
            for value in grid[key]:
                add(
                    variant_cell(task, key, value, base),
                    (task,),
                    {key: value} if value != base[key] else {},
                )
    if "sts" in grid["tasks"]:
        for head in grid["sts_head"]:
            add(
                variant_cell("sts", "sts_head", head, base),
                ("sts",),
                {"sts_head": head} if head != base["sts_head"] else {},
            )
    for task in grid["tasks"]:
        add(
            f"{task}-adamw",
            (task,),
            {"optimizer": "adamw", "weight_decay": grid["adamw_weight_decay"]},
        )
    for cell_id, tasks, overrides in supplementary_cells(grid):
        add(cell_id, tasks, overrides)
    tasks = tuple(grid["tasks"])
    multitask = {
        **grid["multitask"]["tuned"],
        "task_schedule": grid["multitask"]["task_schedule"],
        "downsample_quora_to_sst": False,
    }
    add(f"{MULTITASK}-additive", tasks, multitask)
    add(
        f"{MULTITASK}-smart",
        tasks,
        {**multitask, "smart": {"enabled": True, **grid["multitask"]["smart"]}},
    )
    for key in EXTRA_AXES:
        for value in grid.get(key, []):
            if key == "task_schedule":
                add(multitask_cell(grid, value), tasks, {**multitask, key: value})
                continue
            for task in extra_axis_tasks(key, grid):
                overrides = {key: value} if value != base[key] else {}
                add(variant_cell(task, key, value, base), (task,), overrides)
    return cells


# cells exempt from the preset's train_limit: they train on its all_data_limit (null: every row)
UNCAPPED = frozenset({"quora-all-data"})


def supplementary_cells(grid: dict) -> list[tuple[str, tuple[str, ...], dict]]:
    """Cells the paper has no table for but its claims need (not in Tables 2-9):

    {task}-constant-lr  Adam at a constant learning rate, otherwise base: section 5.4 says
                        cosine annealing brought no gain, yet every paper cell uses it.
    quora-all-data      single-task Quora on all of Quora train: multi-task training uses all
                        of it, single-task runs a sample of SST's size, so "multi-task lowers
                        Quora" confounds the task mix with the data size. Exempt from the
                        train_limit (UNCAPPED), which would give it quora-base's rows (issue 23).
    """
    cells = [(f"{task}-constant-lr", (task,), {"schedule": "constant"}) for task in grid["tasks"]]
    if "quora" in grid["tasks"]:
        cells.append(("quora-all-data", ("quora",), {"downsample_quora_to_sst": False}))
    return cells


def supplementary_tables(grid: dict) -> list[Table]:
    """The supplementary cells beside the cells they test, as panels after the paper's Table 8
    and Table 9 (whose numbers they carry, so the paper's values show where it has them)."""
    tasks = tuple(grid["tasks"])
    constant = Table(
        8,
        "Adam with cosine annealing (every cell of the paper) against a constant learning rate",
        ("CosineAnnealing", "Constant lr"),
        tuple(Row(TASK_NAMES[t], t, (f"{t}-base", f"{t}-constant-lr")) for t in tasks),
        label="Table 8, supplement (not in the paper)",
    )
    if "quora" not in tasks:
        return [constant]
    quora_cells = ("quora-base", "quora-all-data", f"{MULTITASK}-additive")
    quora = Table(
        9,
        "Paraphrase detection by training data: the single-task sample of SST's size, all of "
        "Quora train, and multi-task training (which uses all of it)",
        ("Single-task, SST-sized sample", "Single-task, all data", "Additive Loss"),
        (Row(TASK_NAMES["quora"], "quora", quora_cells),),
        label="Table 9, supplement (not in the paper)",
    )
    return [constant, quora]


FINETUNE_LABELS = {
    "all": "Fine Tune all",
    "last2": "Fine Tune last 2",
    "last1": "Fine Tune only last",
    "none": "PreTrain",
}
STS_HEAD_LABELS = {
    "concat": "Concatenation and map",
    "multiply": "Dot product and map",
    "difference": "Difference and map",
    "cosine": "Scaled Cosine Similarity",
}


def per_task_table(
    number: int, caption: str, columns, cell_of, rows_for: tuple[str, ...], bold: str = "row"
) -> Table:
    """One row per task of `rows_for`, one column per (label, key) of `columns`: cell_of(task, key)."""
    labels = tuple(label for label, _ in columns)
    rows = tuple(
        Row(TASK_NAMES[task], task, tuple(cell_of(task, key) for _, key in columns))
        for task in rows_for
    )
    return Table(number, caption, labels, rows, bold=bold)


def sweep(grid: dict, key: str, label) -> list[tuple[str, object]]:
    """(column label, value) of every value the grid sweeps `key` over."""
    return [(label(value), value) for value in grid[key]]


def variant(grid: dict, key: str):
    """cell_of for a sweep of `key`: the cell of `task` with `key` set to a value."""
    return lambda task, value: variant_cell(task, key, value, grid["base"])


def paper_tables(grid: dict) -> list[Table]:
    """Tables 2-9 of the paper."""
    per_task = partial(per_task_table, rows_for=tuple(grid["tasks"]))
    sts_heads = tuple(
        Row(STS_HEAD_LABELS[head], "sts", (variant_cell("sts", "sts_head", head, grid["base"]),))
        for head in grid["sts_head"]
    )
    return [
        per_task(
            2,
            "Baseline for different Tasks",
            [("Performance", None)],
            lambda task, _: f"{task}-bilstm",
            bold="none",
        ),
        per_task(
            3,
            "Performance of different tasks with dropout variation",
            sweep(grid, "dropout", lambda v: f"Dropout={v:g}"),
            variant(grid, "dropout"),
        ),
        per_task(
            4,
            "Performance of different tasks with learning rate variation",
            sweep(grid, "lr", lambda v: f"lr={slug(v)}"),
            variant(grid, "lr"),
        ),
        per_task(
            5,
            "Performance of different tasks with epoch variation",
            sweep(grid, "epochs", lambda v: f"epoch={v}"),
            variant(grid, "epochs"),
        ),
        per_task(
            6,
            "Performance of different tasks with Number of freezing layers variation",
            sweep(grid, "finetune", FINETUNE_LABELS.get),
            variant(grid, "finetune"),
        ),
        Table(
            7,
            "Performance of sts with variation in use of two embeddings",
            ("Performance",),
            sts_heads,
            row_header="Fine-tune method",
            bold="column",
        ),
        per_task(
            8,
            "Performance of different tasks with learning rate variation",
            [("AdamW", "adamw"), ("CosineAnnealing", "base")],
            lambda task, key: f"{task}-{key}",
            bold="none",
        ),
        per_task(
            9,
            "Performance of tasks with simultaneous optimization",
            [("Additive Loss", "additive"), ("Additive loss with SMART", "smart")],
            lambda _, key: f"{MULTITASK}-{key}",
        ),
    ]


def extra_axis_tables(grid: dict) -> list[Table]:
    """One table per EXTRA_AXES sweep the grid turns on (not in the paper)."""
    tables = []
    for key, axis in EXTRA_AXES.items():
        if grid.get(key):
            cell_of = (
                (lambda _, value: multitask_cell(grid, value))
                if key == "task_schedule"
                else variant(grid, key)
            )
            tables.append(
                per_task_table(
                    axis.number,
                    axis.caption,
                    sweep(grid, key, lambda v, key=key: f"{key}={v}"),
                    cell_of,
                    extra_axis_tasks(key, grid),
                )
            )
    return tables


def build_tables(grid: dict) -> dict[int, Table]:
    """Tables 2-9 and the extra axes' tables, each cell a cell id (Table 1 is the grid itself)."""
    return {table.number: table for table in [*paper_tables(grid), *extra_axis_tables(grid)]}


def job_resources(preset: dict, model: str) -> dict:
    """Resources of one training job of a preset: `bilstm_resources` for the BiLSTM baseline
    where the preset has them (it needs no GPU), `resources` otherwise."""
    if model == "bilstm" and "bilstm_resources" in preset:
        return preset["bilstm_resources"]
    return preset["resources"]


# What a preset sets in every cell's settings (on top of the grid's base and the cell's own).
PRESET_SETTINGS = ("encoder", "device", "precision", "train_limit", "dev_limit", "max_length")
PRESET_SETTINGS += ("threads", "keep_best")


def cell_settings(config: dict, cell_id: str, cells: dict[str, Cell] | None = None) -> dict:
    """The full TrainConfig dict of one cell at the preset in force: base <- preset <- cell
    (`cells`: build_cells(config["grid"]), which callers asking for every cell build once)."""
    preset_name = config["preset"]
    preset = config["presets"][preset_name]
    grid = config["grid"]
    cell = (cells if cells is not None else build_cells(grid))[cell_id]
    settings = {**grid["base"], **{k: v for k, v in cell.overrides.items() if k != "smart"}}
    if "smart" in cell.overrides:
        settings["smart"] = dict(cell.overrides["smart"])
    settings["epochs"] = max(1, round(settings["epochs"] * preset["epoch_scale"]))
    if cell.tasks != ("quora",):
        settings["downsample_quora_to_sst"] = False
    settings.update({key: preset[key] for key in PRESET_SETTINGS})
    if cell_id in UNCAPPED:
        settings["train_limit"] = preset.get("all_data_limit")  # null: every train row
    if len(cell.tasks) > 1:
        settings["keep_best"] = True  # the CS224N submission files come from these weights
        if preset.get("multitask_epochs") is not None:
            settings["epochs"] = preset["multitask_epochs"]
    if settings.get("model", "bert") == "bert":
        settings["batch_size"] = preset["batch_size"]
        if preset.get("head_lr") is not None:
            settings["head_lr"] = preset["head_lr"]
        if preset.get("lr_scale", 1.0) != 1.0:
            # Each BERT rate times the factor (to 12 digits: 1e-5 x 10 is 1e-4), capped at the
            # sweep's largest: above it STS collapses to a constant (benchmarks/RESULTS.md 8.2).
            ceiling = max(settings["lr"], *grid["lr"])
            settings["lr"] = min(float(f"{settings['lr'] * preset['lr_scale']:.12g}"), ceiling)
    elif job_resources(preset, settings["model"])["gpu"] == 0:
        # A job given no GPU trains on the CPU cores it was given.
        settings["device"] = "cpu"
        settings["threads"] = job_resources(preset, settings["model"])["cpus_per_task"]
    settings.update(
        run_name=cell_id,
        preset=preset_name,
        tasks=list(cell.tasks),
        data_dir=DATA_DIR,
        max_bad_rows=config["data"]["max_bad_rows"],
    )
    return settings


# Only the grid keys that lay out the tables (cell ids, rows, columns, Table 1). What a cell
# trains with (bilstm, multitask, adamw_weight_decay) reaches the tables through its runs, so
# changing it re-renders only the tables that show that cell.
TABLE_LAYOUT_KEYS = ("base", "tasks", "dropout", "lr", "epochs", "finetune", "sts_head")


def table_layout_json(grid: dict) -> str:
    """The grid keys that lay out the tables, as the JSON the renderers take (--grid-json);
    with the extra axes an overlay lists (and, for task_schedule, Table 9's schedule, whose
    column is the Additive Loss cell)."""
    layout = {key: grid[key] for key in TABLE_LAYOUT_KEYS}
    layout.update({key: grid[key] for key in EXTRA_AXES if grid.get(key)})
    if grid.get("task_schedule"):
        layout["multitask"] = {"task_schedule": grid["multitask"]["task_schedule"]}
    return json.dumps(layout, sort_keys=True)


def table_numbers(grid: dict) -> list[int]:
    """Every table the grid renders: 1 (the grid itself), the paper's 2-9, the extras."""
    return [1, *sorted(build_tables(grid))]


def cells_for_tables(config: dict, numbers) -> list[str]:
    tables = build_tables(config["grid"])
    ids = [cell for number in numbers for cell in tables[number].cells()]
    return list(dict.fromkeys(ids))
