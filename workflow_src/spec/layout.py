"""Where each preset's outputs live, so that presets never overwrite each other.

    results/runs/<preset>/<cell>/seed<k>/   one training run (metrics.json, predictions.csv)
    results/<preset>/                       everything derived from them: CSVs, tables, report
    results/tokens/<preset>/                the tokenizer and each task's tokenised splits
    reference/<preset>/                     a finished reproduction shipped with the package:
                                            runs/ (as above), its CSVs, tables, report and
                                            PROVENANCE.json

The renderers read runs from one folder (`Paths.runs`): the preset's own, trained where missing,
or a folder of finished runs (`runs_from`, such as reference/cpu/runs), from which the tables
and the report regenerate without training. `ship` writes the derived outputs into
reference/<preset>/ beside a copy of the runs they come from.

The rules take their paths from here; the Snakefile's header comment draws the whole tree.
No torch: the DAG imports this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = "results"
REFERENCE = "reference"
FINISHED = "metrics.json"  # written last by a run: its presence marks the run finished
RUN_FILES = ("predictions.csv", FINISHED)  # what a finished run holds and a shipped one keeps


def runs_dir(preset: str) -> str:
    return f"{RESULTS}/runs/{preset}"


def tokens_dir(preset: str) -> str:
    return f"{RESULTS}/tokens/{preset}"


def tokens_file(folder: str | Path, task: str, encoding: str) -> str:
    """One task's tokenised splits in a tokens folder (`encoding`: tokens.encoding's value, or
    a wildcard in a rule's output pattern)."""
    return f"{folder}/{task}-{encoding}.npz"


def derived_dir(preset: str) -> str:
    return f"{RESULTS}/{preset}"


def reference_dir(preset: str) -> str:
    return f"{REFERENCE}/{preset}"


@dataclass(frozen=True)
class Paths:
    """The folders one invocation of the workflow uses."""

    trained: str  # where training jobs write runs
    runs: str  # where the aggregate, the tables and the report read them
    derived: str  # where the CSVs, tables, plots and report go
    ship_from: str | None  # runs copied into `runs` first (shipping), None = no copy

    @property
    def source(self) -> str:
        """The folder whose runs everything comes from."""
        return self.ship_from or self.runs

    @property
    def trains(self) -> bool:
        """Whether missing runs are trained (else they are an error)."""
        return self.source == self.trained


def paths(preset: str, runs_from: str = "", ship: bool = False) -> Paths:
    """The folders for `preset`, reading finished runs from `runs_from` ("" = the preset's own,
    trained where missing) and, with `ship`, writing into reference/<preset>/."""
    trained = runs_dir(preset)
    source = runs_from.rstrip("/") or trained
    if not ship:
        return Paths(trained, source, derived_dir(preset), None)
    shipped = f"{reference_dir(preset)}/runs"
    return Paths(trained, shipped, reference_dir(preset), None if source == shipped else source)


def missing_runs(folder: str | Path, cells, seeds, root: str | Path = ".") -> list[str]:
    """`<cell>/seed<k>` of every run of `cells` x `seeds` that lacks one of RUN_FILES in
    `folder`."""
    base = Path(root) / folder
    return [
        f"{cell}/seed{seed}"
        for cell in cells
        for seed in seeds
        if not all((base / cell / f"seed{seed}" / name).is_file() for name in RUN_FILES)
    ]


def missing_runs_message(folder: str, missing: list[str], total: int) -> str:
    shown = ", ".join(missing[:20]) + (
        f" and {len(missing) - 20} more" if len(missing) > 20 else ""
    )
    return (
        f"config key 'runs_from': {folder}/ lacks {len(missing)} of the {total} finished runs "
        f"that the preset needs (its cells: the grid, or the preset's subset of it; "
        f"<cell>/seed<k>/ with {' and '.join(RUN_FILES)}): "
        f"{shown}. Runs read from "
        f"another folder are never trained; copy them there, or leave runs_from empty to train "
        f"the preset's own runs."
    )


def presets_with_runs(root: str | Path = ".") -> list[str]:
    """Presets that have at least one finished run (a metrics.json) under `root`."""
    runs = Path(root) / RESULTS / "runs"
    if not runs.is_dir():
        return []
    return sorted(
        preset.name
        for preset in runs.iterdir()
        if preset.is_dir() and next(preset.glob(f"*/seed*/{FINISHED}"), None) is not None
    )


def preset_hint(preset: str, root: str | Path = ".") -> str | None:
    """A note for a user whose finished runs belong to another preset than the one in force
    (say, after `--profile slurm`, a plain `snakemake report` would start quick training)."""
    finished = presets_with_runs(root)
    if preset in finished or not finished:
        return None
    others = ", ".join(finished)
    return (
        f"Note: the preset in force is {preset!r}, which has no finished runs yet; finished "
        f"runs exist for: {others}. For their tables and report, name the preset: "
        f"--config preset=<name> (--profile slurm sets preset=paper), for example "
        f"`snakemake report --config preset={finished[0]}`."
    )
