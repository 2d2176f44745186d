"""Wall-clock of the whole DAG from clean, of a no-op dry run, and of one table's regeneration.

    python benchmarks/dag.py                       # quick preset, 2 cores, scratch copy in /tmp
    python benchmarks/dag.py --preset tiny --keep  # keep the scratch copy to look at it

The repository's own results/ are never touched: the working tree (tracked and untracked,
non-ignored files, as `git ls-files` lists them) is copied into a scratch folder, and Snakemake
runs there with `--directory`. The data come through the DAG's own download rule from a local
mirror (MTB_DATA_MIRROR, default /work/shared/data/cs224n), so "from clean" includes them.

Three figures, printed at the end (plus the CPU seconds of the full run, which other users of a
shared machine do not inflate the way they inflate wall-clock):
  full      `snakemake --cores N` from an empty results folder: every table, the report
  dry_run   `snakemake -n` on the finished tree (nothing to do), median of 3
  one_table one run's metrics.json changed (a newline appended), then `snakemake results/tableT.tex`
            for a table that shows it: only that table's render job runs
and the slowest training jobs from Snakemake's per-job benchmark files.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
sys.path.insert(0, str(ROOT))

from tests.worktree import copy_workflow  # noqa: E402 (needs the path above)


def children_cpu() -> float:
    """CPU seconds of every finished child process and its reaped descendants (all jobs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snakemake(workdir: Path, preset: str, cores: int, *extra: str) -> float:
    """Seconds one Snakemake call takes; its output goes to workdir/benchmark-logs/."""
    # Targets before --config: its nargs="*" would take them as config entries.
    cmd = [str(SNAKEMAKE), *extra, "--cores", str(cores), "--config", f"preset={preset}"]
    cmd += ["--directory", str(workdir), "--snakefile", str(workdir / "Snakefile")]
    logs = workdir / "benchmark-logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"snakemake-{len(list(logs.iterdir())):02d}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"dag.py: {' '.join(extra) or 'snakemake'} failed after {seconds:.0f}s: {log}")
    return seconds


def slowest_jobs(workdir: Path, preset: str, count: int = 8) -> list[tuple[float, str]]:
    """(seconds, cell/seed) of the slowest training jobs, from Snakemake's benchmark TSVs."""
    rows = []
    for tsv in (workdir / "results" / "benchmarks" / preset).glob("*/seed*.tsv"):
        with tsv.open() as handle:
            first = next(csv.DictReader(handle, delimiter="\t"))
        rows.append((float(first["s"]), f"{tsv.parent.name}/{tsv.stem}"))
    return sorted(rows, reverse=True)[:count]


def full_run(workdir: Path, args) -> float:
    """Seconds of the whole DAG from clean; prints them with the CPU seconds of all jobs."""
    cpu_before = children_cpu()
    full = snakemake(workdir, args.preset, args.cores)
    cpu = children_cpu() - cpu_before
    load = os.getloadavg()[2]
    print(f"full      {full:8.1f} s  ({full / 60:.1f} min) from clean", flush=True)
    print(
        f"          {cpu:8.1f} CPU-s in all jobs: {cpu / args.cores:.0f} s on {args.cores} "
        f"otherwise idle cores (15-min load average at the end: {load:.1f})",
        flush=True,
    )
    return full


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--table", type=int, default=3, help="the table to regenerate")
    parser.add_argument(
        "--mirror",
        type=Path,
        default=Path(os.environ.get("MTB_DATA_MIRROR", "/work/shared/data/cs224n")),
    )
    parser.add_argument("--scratch", type=Path, help="folder to run in (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--finished",
        type=Path,
        help="a finished scratch tree of an earlier run: time only the dry run and one table",
    )
    args = parser.parse_args(argv)

    os.environ["MTB_DATA_MIRROR"] = str(args.mirror)
    if args.finished:
        workdir = args.finished
    else:
        workdir = args.scratch or Path(tempfile.mkdtemp(prefix="mtb-dag-"))
        workdir.mkdir(parents=True, exist_ok=True)
        if (workdir / "results").exists():
            sys.exit(f"dag.py: {workdir}/results exists; give an empty --scratch folder")
        copy_workflow(workdir)
    print(f"scratch copy: {workdir} (preset {args.preset}, {args.cores} cores)", flush=True)

    full = float("nan")
    try:
        if not args.finished:
            full = full_run(workdir, args)
        dry = [snakemake(workdir, args.preset, 1, "-n") for _ in range(3)]
        print(f"dry_run   {statistics.median(dry):8.1f} s  (median of {dry})", flush=True)

        sys.path.insert(0, str(workdir))
        import yaml

        from workflow_src.spec import grid

        config = yaml.safe_load((workdir / "config.yaml").read_text())
        config["preset"] = args.preset
        cell = grid.cells_for_tables(config, [args.table])[0]
        seed = config["presets"][args.preset]["seeds"][0]
        metrics = workdir / "results" / "runs" / args.preset / cell / f"seed{seed}" / "metrics.json"
        # A changed file (still the same JSON): Snakemake skips a file whose mtime alone moved
        # when its content matches what it recorded.
        metrics.write_text(metrics.read_text() + "\n")
        table = f"results/table{args.table}.tex"
        one = snakemake(workdir, args.preset, 1, table)
        print(f"one_table {one:8.1f} s  ({table} after {cell}/seed{seed} changed)", flush=True)
        print("slowest training jobs (s):")
        for seconds, name in slowest_jobs(workdir, args.preset):
            print(f"  {seconds:7.1f}  {name}")
        print(
            f"dag_full_s={full:.1f} dag_dry_run_s={statistics.median(dry):.2f} "
            f"dag_one_table_s={one:.2f}"
        )
    finally:
        if not args.keep and args.scratch is None and args.finished is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
