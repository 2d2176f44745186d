"""Which cells a preset trains and renders, and which of the paper's claims those cells decide.

A preset may restrict the grid to some of its cells with `subset` (config.yaml), so that a
costly regime trains only what a chosen list of claims needs, and a user widens it by config:

    subset:
      cells: [sst-base, sst-lr1e-4, ...]   these cells
      claims: [adamw-no-gain, ...]         and every cell these claims of report/claims.yaml
      claim_tasks: [sst, sts]              compare, on these tasks only

Without `subset` a preset has every cell of the grid. Everything downstream follows from the
cells that are present, so that a partial grid (a preset's subset, a folder of shipped runs)
renders what it has and says what it lacks:

- `tables_shown`: the tables worth rendering for the cells present;
- `claim_scopes` and `restrict_claims`: per claim, the comparisons whose cells are all present,
  and a note of what was left out (a claim that names tasks without runs is decided on the
  tasks it has, and says so).

claims.yaml is read here for its comparisons' cell names only (the format is documented at
its top; `workflow_src.analysis.claims` reads the rest): no torch and no analysis import, as
the DAG and the cost estimate import this.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from workflow_src.spec import grid
from workflow_src.spec.tasks import TASK, TASKS

CLAIMS_FILE = "report/claims.yaml"


class SelectionError(ValueError):
    """A preset's subset names what the grid or claims.yaml does not have."""


# ----------------------------------------------------------------------------- claims.yaml


@dataclass(frozen=True)
class ComparisonCells:
    """One comparison of a claim on one task: the cells its two sides name."""

    index: int  # the entry's position in the claim's `compare` list
    task: str
    cells: tuple[str, ...]


def load_document(path: str | Path = CLAIMS_FILE) -> dict:
    """claims.yaml as a dict (its `claims` list of entries)."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SelectionError(f"{path}: cannot read the claims: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        raise SelectionError(f"{path}: expected a `claims:` list")
    return document


def side_cells(text: str, task: str) -> list[str]:
    """The cells one side names: 'multitask-additive:sts - {task}-base' -> [multitask-additive,
    sst-base] for task sst (a term is `cell` or `cell:task`, terms joined by + or -)."""
    tokens = text.replace("{task}", task).split()
    return [token.partition(":")[0] for token in tokens if token not in ("+", "-")]


def comparison_cells(entry: dict) -> list[ComparisonCells]:
    """Every comparison of one claim entry, expanded over its tasks (all tasks unless the
    entry lists them), as `workflow_src.analysis.claims.load_claims` expands them."""
    comparisons = []
    for index, spec in enumerate(entry.get("compare", [])):
        for task in spec.get("tasks", TASKS):
            cells = side_cells(str(spec["left"]), task) + side_cells(str(spec["right"]), task)
            comparisons.append(ComparisonCells(index, task, tuple(dict.fromkeys(cells))))
    return comparisons


def claims_by_id(document: dict) -> dict[str, dict]:
    return {str(entry.get("id")): entry for entry in document["claims"]}


def claim_cells(document: dict, ids: Iterable[str], tasks: Iterable[str], where: str) -> list[str]:
    """The cells that the comparisons of claims `ids` on `tasks` compare, in claim order;
    `where` names the config key for the errors."""
    entries, tasks = claims_by_id(document), set(tasks)
    unknown = [claim for claim in ids if claim not in entries]
    if unknown:
        raise SelectionError(
            f"config key '{where}.claims': not in {CLAIMS_FILE}: {', '.join(unknown)}. Its "
            f"claims: {', '.join(entries)}"
        )
    cells: list[str] = []
    for claim in ids:
        chosen = [c for c in comparison_cells(entries[claim]) if c.task in tasks]
        if not chosen:
            raise SelectionError(
                f"config key '{where}': claim {claim!r} compares nothing on the tasks "
                f"{sorted(tasks)} (its comparisons are on "
                f"{sorted({c.task for c in comparison_cells(entries[claim])})})"
            )
        cells += [cell for comparison in chosen for cell in comparison.cells]
    return list(dict.fromkeys(cells))


# ----------------------------------------------------------------------------- cells


def subset_key(config: dict) -> str:
    return f"presets.{config['preset']}.subset"


def selected_cells(config: dict, claims_path: str | Path = CLAIMS_FILE) -> dict[str, grid.Cell]:
    """The cells of the preset in force, in table order: its `subset`, else every cell."""
    cells = grid.build_cells(config["grid"])
    subset = config["presets"][config["preset"]].get("subset")
    if subset is None:
        return cells
    where = subset_key(config)
    listed = list(subset.get("cells", []))
    unknown = [cell for cell in listed if cell not in cells]
    if unknown:
        raise SelectionError(
            f"config key '{where}.cells': not in the grid: {', '.join(unknown)}. Its cells: "
            f"{', '.join(cells)}"
        )
    wanted = set(listed)
    if subset.get("claims"):
        tasks = subset.get("claim_tasks", TASKS)
        named = claim_cells(load_document(claims_path), subset["claims"], tasks, where)
        absent = [cell for cell in named if cell not in cells]
        if absent:
            raise SelectionError(
                f"config key '{where}.claims': the claims compare {', '.join(absent)}, which "
                f"the grid does not have (its tasks: {', '.join(config['grid']['tasks'])})"
            )
        wanted.update(named)
    if not wanted:
        raise SelectionError(f"config key '{where}': selects no cell (list cells or claims)")
    return {cell_id: cell for cell_id, cell in cells.items() if cell_id in wanted}


# ----------------------------------------------------------------------------- tables


def tables_shown(tables: Iterable[grid.Table], cells: Iterable[str]) -> list[grid.Table]:
    """The tables worth rendering with runs of `cells`: those that have every cell they show,
    and those that have some cell besides a task's base cell (a table left with its base cells
    alone, such as Table 5 without its 20- and 30-epoch cells, varies nothing). The others are
    skipped; a table rendered with some of its cells absent shows them as absent."""
    present = set(cells)
    bases = {grid.base_cell(task) for task in TASK}
    return [
        table
        for table in tables
        if set(table.cells()) <= present or (set(table.cells()) & present) - bases
    ]


def table_numbers(config: dict, cells: Iterable[str]) -> list[int]:
    """Table 1 (the grid itself) and every numbered table shown for `cells`."""
    shown = tables_shown(grid.build_tables(config["grid"]).values(), cells)
    return [1, *(table.number for table in shown)]


def table_cells(config: dict, number: int, cells: Iterable[str]) -> list[str]:
    """The cells of `cells` that table `number` shows (Table 1: none)."""
    if number == 1:
        return []
    present = set(cells)
    return [cell for cell in grid.cells_for_tables(config, [number]) if cell in present]


# ----------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class ClaimScope:
    """What the cells present decide of one claim."""

    id: str
    kept: tuple[ComparisonCells, ...]  # comparisons whose cells are all present
    dropped: tuple[ComparisonCells, ...]  # the others
    missing: tuple[str, ...]  # cells the dropped comparisons need and the runs lack
    at_least: int  # comparisons to be reproduced among the kept (capped at their number)
    written_at_least: int | None  # claims.yaml's `at_least`, of all comparisons (None: all)

    @property
    def decided(self) -> bool:
        return bool(self.kept)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.task for c in self.kept))

    @property
    def note(self) -> str:
        """'' for a claim decided on all its comparisons; else what was left out and why."""
        if not self.dropped:
            return ""
        lacking = f"no runs of {', '.join(self.missing)}"
        if not self.kept:
            return f"Not decided: {lacking}."
        total = len(self.kept) + len(self.dropped)
        left_out = sorted({c.task for c in self.dropped} - set(self.tasks))
        text = (
            f"Decided on {len(self.kept)} of its {total} comparisons, on "
            f"{', '.join(self.tasks)}"
            + (f" (not on {', '.join(left_out)})" if left_out else "")
            + f": {lacking}."
        )
        if self.written_at_least is not None:
            text += (
                f" At least {self.at_least} of the {len(self.kept)} kept must be reproduced "
                f"(claims.yaml: {self.written_at_least} of {total})."
            )
        return text


def claim_scopes(document: dict, cells: Iterable[str]) -> dict[str, ClaimScope]:
    """Claim id -> what runs of `cells` decide of it (every claim of the document)."""
    present = set(cells)
    scopes = {}
    for claim, entry in claims_by_id(document).items():
        comparisons = comparison_cells(entry)
        kept = tuple(c for c in comparisons if set(c.cells) <= present)
        dropped = tuple(c for c in comparisons if not set(c.cells) <= present)
        missing = {cell for c in dropped for cell in c.cells} - present
        written = int(entry["at_least"]) if "at_least" in entry else None
        at_least = min(len(comparisons) if written is None else written, len(kept))
        scopes[claim] = ClaimScope(claim, kept, dropped, tuple(sorted(missing)), at_least, written)
    return scopes


def restrict_claims(document: dict, cells: Iterable[str]) -> tuple[dict, dict[str, str]]:
    """claims.yaml's document with only what runs of `cells` decide: each comparison listing
    just the tasks whose cells are all present, `at_least` capped at the comparisons kept, and
    the claims with none kept left out; and claim id -> note (claim_scopes) for each claim
    restricted or left out. The result reads as claims.yaml does."""
    scopes = claim_scopes(document, cells)
    restricted = copy.deepcopy(document)
    restricted["claims"] = []
    for entry in document["claims"]:
        scope = scopes[str(entry.get("id"))]
        if not scope.decided:
            continue
        compare = []
        for index, spec in enumerate(entry.get("compare", [])):
            tasks = [c.task for c in scope.kept if c.index == index]
            if tasks:
                compare.append({**copy.deepcopy(spec), "tasks": tasks})
        kept = {**copy.deepcopy(entry), "compare": compare}
        if "at_least" in entry:
            kept["at_least"] = scope.at_least
        restricted["claims"].append(kept)
    notes = {claim: scope.note for claim, scope in scopes.items() if scope.note}
    return restricted, notes


def subset_lines(config: dict, claims_path: str | Path = CLAIMS_FILE) -> list[str]:
    """What a preset's subset trains and which claims it decides (for `snakemake cost`);
    nothing for a preset without one."""
    if config["presets"][config["preset"]].get("subset") is None:
        return []
    cells = selected_cells(config, claims_path)
    total = len(grid.build_cells(config["grid"]))
    scopes = claim_scopes(load_document(claims_path), cells)
    full = [s.id for s in scopes.values() if s.decided and not s.dropped]
    partial = [f"{s.id} (on {', '.join(s.tasks)})" for s in scopes.values() if s.dropped and s.kept]
    lines = [
        f"{subset_key(config)}: {len(cells)} of the grid's {total} cells: {', '.join(cells)}",
        f"claims decided on all their comparisons: {', '.join(full) or 'none'}",
        f"claims decided on some of their comparisons: {', '.join(partial) or 'none'}",
        f"claims not decided (no runs of their cells): "
        f"{', '.join(s.id for s in scopes.values() if not s.decided) or 'none'}",
        f"tables: {', '.join(map(str, table_numbers(config, cells)))}",
    ]
    return lines
