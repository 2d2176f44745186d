"""Where each preset's outputs live, so that presets never overwrite each other.

    results/runs/<preset>/<cell>/seed<k>/   one training run (metrics.json, predictions.csv)
    results/<preset>/                       everything derived from them: CSVs, tables, report
    results/tokens/<preset>/                the tokenizer and each task's tokenised splits

The rules take their paths from here; the Snakefile's header comment draws the whole tree.
No torch: the DAG imports this.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = "results"


def runs_dir(preset: str) -> str:
    return f"{RESULTS}/runs/{preset}"


def tokens_dir(preset: str) -> str:
    return f"{RESULTS}/tokens/{preset}"


def derived_dir(preset: str) -> str:
    return f"{RESULTS}/{preset}"


def presets_with_runs(root: str | Path = ".") -> list[str]:
    """Presets that have at least one finished run (a metrics.json) under `root`."""
    runs = Path(root) / RESULTS / "runs"
    if not runs.is_dir():
        return []
    return sorted(
        preset.name
        for preset in runs.iterdir()
        if preset.is_dir() and next(preset.glob("*/seed*/metrics.json"), None) is not None
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
