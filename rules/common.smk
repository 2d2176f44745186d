# Validation beyond the schema, wildcard constraints and input functions. Logic lives in
# workflow_src (tested there); this file only wires it.
import json
import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from workflow_src import grid  # noqa: E402 (needs the path above)

PRESET = config["preset"]
if PRESET not in config["presets"]:
    raise ValueError(
        f"config key 'preset': {PRESET!r} is not one of the presets {sorted(config['presets'])}"
    )
PRESET_CONFIG = config["presets"][PRESET]
SEEDS = PRESET_CONFIG["seeds"]
CELLS = grid.build_cells(config["grid"])
ALL_CELLS = list(CELLS)
RUNS = f"results/runs/{PRESET}"
DATA_DIR = grid.DATA_DIR
DATA_FILES = [f"{DATA_DIR}/{name}" for name in config["data"]["files"]]


wildcard_constraints:
    cell="|".join(re.escape(cell) for cell in ALL_CELLS),
    seed=r"\d+",
    n=r"[1-9]",


def run_metrics(cells):
    """metrics.json of every seed of `cells` at the preset in force."""
    return expand(f"{RUNS}/{{cell}}/seed{{seed}}/metrics.json", cell=cells, seed=SEEDS)


def table_cells(n):
    """Cell ids that table `n` shows (Table 1 is the grid itself: none)."""
    return [] if int(n) == 1 else grid.cells_for_tables(config, [int(n)])


def cell_settings_json(wildcards):
    """One cell's full training settings, as the JSON the training command takes."""
    return json.dumps(grid.cell_settings(config, wildcards.cell), sort_keys=True)
