"""PROVENANCE.json of a shipped reproduction (reference/<preset>/): what it ran, and where.

    python -m workflow_src.render.reference --preset cpu --runs reference/cpu/runs/*/seed*/metrics.json \
        --output reference/cpu/PROVENANCE.json

Written by the ship_provenance rule (`snakemake --config preset=<name> ship_reference=True`)
beside the copied runs and the tables rendered from them. Shipped numbers come from one commit
of the training code, or from earlier commits that reference/training_commits.yaml lists with
the test showing their code gives the same metrics (and the cells it does not: stale, named in
PROVENANCE.json and the report until retrained); anything else (several unlisted commits, runs
from outside a git checkout) is refused here, naming each commit's runs. No torch: it reads
metrics.json files only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import yaml

from workflow_src.atomic import write_text_atomic
from workflow_src.spec.layout import reference_dir

log = logging.getLogger(__name__)


COMMITS_FILE = "reference/training_commits.yaml"


class ProvenanceError(ValueError):
    """The runs cannot be shipped as one reproduction."""


def load_commit_notes(path: str | Path = COMMITS_FILE) -> dict[str, dict]:
    """Earlier training commits whose runs may ship beside the current commit's (commit ->
    {evidence, stale_cells: {cell: what changed}}); none when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return {}
    notes = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for commit, note in notes.items():
        if not isinstance(note, dict) or not note.get("evidence"):
            raise ProvenanceError(f"{path}: commit {commit} needs an `evidence` entry")
    return {str(commit): note for commit, note in notes.items()}


def training_commits(records: dict[str, dict], notes: dict[str, dict] | None = None) -> dict:
    """The commits the runs (path -> metrics.json record) were trained at.

    One commit not in `notes` is the current training code; every other commit must be listed
    in `notes` (reference/training_commits.yaml) with the test that shows its code gives the
    current metrics, and the cells whose training changed since (`stale_cells`: cell -> what).
    """
    notes = notes or {}
    by_commit: dict[str, list[str]] = {}
    for path, record in records.items():
        commit = (record.get("provenance") or {}).get("git_commit") or "unknown"
        by_commit.setdefault(commit, []).append(path)
    unlisted = sorted(commit for commit in by_commit if commit not in notes)
    if "unknown" in by_commit or len(unlisted) > 1:
        parts = "; ".join(
            f"{commit}: {len(paths)} runs, e.g. {sorted(paths)[0]}"
            for commit, paths in sorted(by_commit.items())
        )
        raise ProvenanceError(
            "shipped runs must come from one known commit of the training code, or from earlier "
            f"commits listed in {COMMITS_FILE} with the test that shows their code gives the "
            f"same metrics; found {parts}. Rerun the runs of the other commits (delete their "
            "folders) at one commit."
        )
    commits = []
    for commit, paths in sorted(by_commit.items()):
        cells = sorted({records[path]["run"]["cell"] for path in paths})
        entry = {"commit": commit, "runs": len(paths), "cells": cells}
        note = notes.get(commit)
        if note is None:
            entry["status"] = "current training code"
        else:
            changed = note.get("stale_cells") or {}
            entry["status"] = "same metrics as the current training code"
            entry["evidence"] = note["evidence"]
            if stale := {cell: changed[cell] for cell in cells if cell in changed}:
                entry["status"] += ", but for its stale cells"
                entry["stale_cells"] = stale
        commits.append(entry)
    return {"git_commit": unlisted[0] if unlisted else None, "commits": commits}


def stale_cells(training: dict) -> list[str]:
    """Cells whose shipped runs come from training code that gives other metrics today."""
    return sorted({cell for entry in training["commits"] for cell in entry.get("stale_cells", [])})


def training_machines(records: dict[str, dict]) -> list[dict]:
    """Each distinct machine the runs report (device, GPU, threads, precision), with its count."""
    keys = ("device", "gpu_name", "threads", "precision")
    counts = Counter(
        tuple((key, (record.get("compute") or {}).get(key)) for key in keys)
        for record in records.values()
    )
    return [{**dict(machine), "runs": n} for machine, n in sorted(counts.items(), key=str)]


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def this_machine() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def checkout_state(root: Path, shipped_to: str | None = None) -> dict:
    """The commit the workflow is shipped from, and whether tracked files differ from it. The
    folder `shipped_to` does not count: shipping rewrites it (this very file among its outputs)."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    outside = ["--", ".", f":(exclude){shipped_to}"] if shipped_to else []
    status = git("status", "--porcelain", "--untracked-files=no", *outside) if commit else None
    # None: not a git checkout, so neither the commit nor edits can be told
    return {"git_commit": commit, "tracked_files_edited": None if status is None else bool(status)}


def provenance(
    preset: str,
    records: dict[str, dict],
    root: Path,
    configfiles: list[str] | None = None,
    notes: dict[str, dict] | None = None,
) -> dict:
    """What was shipped and from where; `configfiles` are the config overlays in force (such as
    one that ships a preset's first seed while the others train), repeated in render_again."""
    runs = [record["run"] for record in records.values()]
    overlays = "".join(f" --configfile {shlex.quote(path)}" for path in configfiles or [])
    commits = training_commits(records, notes)
    return {
        "preset": preset,
        "training": {
            **commits,
            "stale_cells": stale_cells(commits),
            "runs": len(runs),
            "cells": len({run["cell"] for run in runs}),
            "seeds": sorted({run["seed"] for run in runs}),
            "encoders": sorted({str(run.get("encoder")) for run in runs}),
            "machines": training_machines(records),
            "compute_hours": sum(
                (r.get("compute") or {}).get("wall_seconds") or 0 for r in records.values()
            )
            / 3600,
        },
        "rendered": {
            **checkout_state(root, shipped_to=reference_dir(preset)),
            "machine": this_machine(),
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "render_again": (
            f"snakemake{overlays} --config preset={preset} runs_from={reference_dir(preset)}/runs"
            f"  (tables, claims and report into results/{preset}/, no training)"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="every shipped metrics.json")
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--configfile", action="append", default=[], help="a config overlay in force (repeatable)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    records = {path: json.loads(Path(path).read_text()) for path in args.runs}
    try:
        root = Path(__file__).resolve().parents[2]
        document = provenance(
            args.preset, records, root, args.configfile, load_commit_notes(root / COMMITS_FILE)
        )
    except ProvenanceError as error:
        log.error("%s", error)
        return 1
    write_text_atomic(args.output, json.dumps(document, indent=2) + "\n")
    log.info("%d runs of preset %s -> %s", len(records), args.preset, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
