# Validation beyond the schema, wildcard constraints and input functions. Logic lives in
# workflow_src (tested there); this file only wires it.
import json
import os
import re
import shlex
import sys

sys.path.insert(0, workflow.basedir)

from snakemake.exceptions import WorkflowError

from workflow_src.analysis import run_files
from workflow_src.spec import cost
from workflow_src.data import download
from workflow_src.data import encoders
from workflow_src.spec import grid
from workflow_src.spec import layout
from workflow_src.spec import selection
from workflow_src.spec import tasks
from workflow_src.data import tokens  # noqa: E402 (needs the path above)

PRESET = config["preset"]
if PRESET not in config["presets"]:
    raise ValueError(
        f"config key 'preset': {PRESET!r} is not one of the presets {sorted(config['presets'])}"
    )
PRESET_CONFIG = config["presets"][PRESET]
SEEDS = PRESET_CONFIG["seeds"]
CELLS = grid.build_cells(config["grid"])
# The cells the preset trains and renders: its `subset` of the grid (a claims list, a cells
# list), else all; the tables shown are those these cells fill (workflow_src/spec/selection.py).
# A subset naming what the grid or claims.yaml lacks stops here, naming its config key.
ALL_CELLS = list(selection.selected_cells(config))
TABLE_NUMBERS = selection.table_numbers(config, ALL_CELLS)
HUB = config.get("hub", {})
# The mirrors and the data's base URL reach the download and fetch jobs through the
# environment, not their params: where verified files come from must not rerun anything
# (rules/data.smk).
for source, variable in (
    (config["data"].get("mirror", ""), download.MIRROR_ENV),
    (config["data"]["base_url"], download.BASE_URL_ENV),
    (HUB.get("mirror", ""), encoders.MIRROR_ENV),
):
    if source:
        os.environ[variable] = source
# What training jobs load (a folder, or "embedded") and the hub model to fetch first, if any. A
# missing or incomplete local folder stops here, before any job (or GPU) is asked for.
ENCODER, HUB_ENCODER = encoders.job_encoder(
    PRESET_CONFIG["encoder"], HUB.get("revisions", {})
)
ENCODER_PROVENANCE = [f"{ENCODER}/{encoders.PROVENANCE_FILE}"] if HUB_ENCODER else []
if HUB_ENCODER and os.path.exists(ENCODER_PROVENANCE[0]):
    encoders.check_model_folder(
        ENCODER, remedy="Delete the folder: the fetch_encoder rule fetches it again."
    )
# Each cell's training settings (JSON, as the training command takes them) and the resources
# of its jobs at the preset in force, the wall-time limit from its cost estimate.
SETTINGS = {
    cell: {**grid.cell_settings(config, cell, CELLS), "encoder": ENCODER}
    for cell in ALL_CELLS
}
CELL_SETTINGS = {cell: json.dumps(SETTINGS[cell], sort_keys=True) for cell in ALL_CELLS}
# The tokenizer and each task's tokenised splits, made once (rules/tokens.smk); every training
# job reads its tasks' files instead of tokenising again.
TOKENS = layout.tokens_dir(PRESET)
CELL_TOKENS = {
    cell: {
        task: layout.tokens_file(
            TOKENS, task, tokens.encoding(task, s["pair_encoding"] == "joint")
        )
        for task in s["tasks"]
    }
    for cell, s in SETTINGS.items()
}
TRAIN_JOBS = cost.job_plan(config)
# Cells whose jobs need no GPU where the preset gives them none (the BiLSTM in `paper`): they
# run as train_cell_cpu, so that GPU settings of a profile (gpu_model) never reach them.
CPU_CELLS = [
    cell
    for cell in ALL_CELLS
    if TRAIN_JOBS[cell]["gpu"] == 0 and PRESET_CONFIG["resources"]["gpu"] > 0
]
# Training writes the preset's runs (TRAINED); the aggregate, tables and report read RUNS and
# write everything derived from them (CSVs, tables, report) into OUT: the preset's own folders,
# or finished runs from `runs_from` (trained never) and, with `ship_reference`, reference/<preset>/.
PATHS = layout.paths(PRESET, config["runs_from"], config["ship_reference"])
TRAINED, RUNS, OUT = PATHS.trained, PATHS.runs, PATHS.derived
if not PATHS.trains:
    MISSING_RUNS = layout.missing_runs(PATHS.source, ALL_CELLS, SEEDS)
    if MISSING_RUNS:
        raise ValueError(
            layout.missing_runs_message(
                PATHS.source, MISSING_RUNS, len(ALL_CELLS) * len(SEEDS)
            )
        )
PRESET_HINT = layout.preset_hint(PRESET) if PATHS.trains else None
# Shipping adds reference/<preset>/PROVENANCE.json to the default target (rules/reference.smk).
SHIP_PROVENANCE = [f"{OUT}/PROVENANCE.json"] if config["ship_reference"] else []
if PRESET_HINT:
    print(PRESET_HINT, file=sys.stderr)
DATA_DIR = grid.DATA_DIR
DATA_FILES = [f"{DATA_DIR}/{name}" for name in config["data"]["files"]]
TEST_DIR = (
    f"{DATA_DIR}-test"  # the unlabelled test files, for the submission files only
)
MULTITASK_CELLS = [cell for cell in ALL_CELLS if len(CELLS[cell].tasks) > 1]


def run_metrics(cells):
    """metrics.json of every seed of `cells` at the preset in force."""
    return expand(f"{RUNS}/{{cell}}/seed{{seed}}/metrics.json", cell=cells, seed=SEEDS)


# The finished runs the workflow will read, checked before anything runs (analysis/run_files.py):
# a truncated metrics.json or an impossible value (an accuracy of 1.7) is named with its remedy
# here, instead of being taken as done; no run is deleted or retrained without the user.
RUN_FILE_PROBLEMS = run_files.problems(run_metrics(ALL_CELLS))
if RUN_FILE_PROBLEMS:
    raise WorkflowError(
        f"{len(RUN_FILE_PROBLEMS)} finished run(s) cannot be used:\n  "
        + "\n  ".join(RUN_FILE_PROBLEMS)
    )


def run_predictions(cells):
    """predictions.csv of every seed of `cells` (its best epoch's dev predictions)."""
    return expand(
        f"{RUNS}/{{cell}}/seed{{seed}}/predictions.csv", cell=cells, seed=SEEDS
    )


def table_cells(n):
    """Cell ids that table `n` shows (Table 1 is the grid itself: none)."""
    return selection.table_cells(config, int(n), ALL_CELLS)


def cell_settings_json(wildcards):
    """One cell's full training settings, as the JSON the training command takes."""
    if wildcards.cell not in CELL_SETTINGS:
        raise ValueError(
            f"{wildcards.cell!r} is not a cell of preset {PRESET}; cells: {', '.join(ALL_CELLS)}"
        )
    return CELL_SETTINGS[wildcards.cell]


# Wildcard constraints stay short whatever the grid's size: Snakemake writes a rule's
# constraints into its output patterns and rescans them for every job, so a constraint listing
# every cell made planning grow with cells x jobs (benchmarks/grid_scale.py). A path names a
# cell with these characters (grid.slug); an unknown cell fails in cell_settings_json.
CELL_CHARS = r"[A-Za-z0-9_.+\-]+"


def cells_regex(cells):
    """A constraint matching exactly `cells` (none: a pattern that never matches)."""
    return "|".join(re.escape(cell) for cell in cells) or "(?!)"


def cells_except_regex(cells):
    """A constraint matching any cell name but `cells` (kept short: `cells` are few)."""
    if not cells:
        return CELL_CHARS
    return f"(?!(?:{cells_regex(cells)})(?![A-Za-z0-9_.+\\-])){CELL_CHARS}"


TASK_NAMES = list(tasks.TASK)


def task_data_files(task):
    """The CS224N files of one task (its train and dev CSVs)."""
    return [f"{DATA_DIR}/{name}" for name in tasks.TASK[task].files.values()]


def cell_tokens(wildcards):
    """The tokens files of a cell's tasks (inputs of its training jobs)."""
    return list(CELL_TOKENS[wildcards.cell].values())


def cell_tokens_args(wildcards):
    """The same as the training command's --tokens TASK=FILE arguments, each quoted for the
    shell (shlex.quote leaves a safe word as it is, so the param's value is unchanged).
    """
    return " ".join(
        shlex.quote(f"{task}={path}")
        for task, path in CELL_TOKENS[wildcards.cell].items()
    )


def train_resource(name):
    """One resource of a cell's training jobs (TRAIN_JOBS), as rule resources take it."""
    return lambda wildcards: TRAIN_JOBS[wildcards.cell][name]


wildcard_constraints:
    cell=CELL_CHARS,
    seed=r"\d+",
    n=r"[1-9][0-9]*",
