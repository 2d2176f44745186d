"""The HTML report: the answer first (a sentence per verdict class and the claims' forest plot),
then every table beside the paper, the claims' numbers, the floors, plots and provenance.

Rendered with Jinja2 (autoescape on, so text from the data is shown, never run) from CSVs only:
metrics.csv, summary.csv and epochs.csv (workflow_src.analysis.aggregate), claims.csv and
floors.csv (decided by the analysis: this module computes no interval and no verdict), and the
paper's numbers and claims (`report/*.yaml`); it links to each run's metrics.json but reads none.
Plots (matplotlib, Agg) are embedded as base64 PNG, so the page is one self-contained file;
with `--plots-dir` the same PNGs are also written there, and `--forest` writes the forest plot
as <stem>.png and <stem>.pdf. `--also-claims NAME=CSV` adds another shipped scale's claims.csv
as a second marker per row; `--shipped-summary` (the shipped reproduction of the same preset)
flags the cells whose mean lies outside its interval.

Command line (what `rules/report.smk` calls):
    python -m workflow_src.render.report --metrics-csv results/quick/metrics.csv \
        --summary-csv results/quick/summary.csv --epochs-csv results/quick/epochs.csv \
        --claims-csv results/quick/claims.csv --floors-csv results/quick/floors.csv \
        --paper report/paper_results.yaml --claims report/claims.yaml \
        --grid-json '{...config grid...}' --preset quick --encoder embedded --seeds 1 \
        --epoch-scale 0.1 [--stage best] --output results/quick/report.html \
        [--plots-dir results/quick/plots] [--forest results/quick/claims] \
        [--also-claims regime=reference/regime/claims.csv] [--shipped-summary CSV]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pandas as pd

from workflow_src.analysis import aggregate, claims, floors
from workflow_src.atomic import write_bytes_atomic, write_text_atomic
from workflow_src.render import forest, plots, tables, verdicts
from workflow_src.render.plots import data_uri
from workflow_src.render.tables import TableView, table_view
from workflow_src.spec import selection
from workflow_src.spec.grid import TASK_NAMES, Table, build_tables, supplementary_tables

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"


# ----------------------------------------------------------------------------- overview


def overview(runs: pd.DataFrame, context: tables.Context) -> dict:
    def column(name):
        return runs[name] if name in runs.columns else pd.Series(dtype=object)

    wall = pd.to_numeric(column("wall_seconds"), errors="coerce").fillna(0)
    on_gpu = column("device").astype(str) == "cuda"
    gpus = sorted({str(g) for g in column("gpu_name").dropna()})
    devices = sorted({str(d) for d in column("device").dropna()})
    threads = sorted({int(t) for t in pd.to_numeric(column("threads"), errors="coerce").dropna()})
    return {
        "preset": context.preset,
        "encoder": context.encoder_name(),
        "seeds": ", ".join(str(s) for s in context.seeds),
        "stage": tables.STAGE_WORDS.get(context.stage, context.stage),
        "runs": len(runs),
        "cells": runs["cell"].nunique(),
        "hardware": ", ".join(devices + gpus) or "unknown",
        "threads": ", ".join(str(t) for t in threads) or "unknown",
        "compute_hours": wall.sum() / 3600,
        "gpu_hours": wall[on_gpu].sum() / 3600,
        "slurm_jobs": int(column("slurm_job_id").notna().sum()),
        "resumed": int(column("resumed_from_epoch").notna().sum()),
    }


def provenance(runs: pd.DataFrame) -> dict:
    version_columns = sorted(c for c in runs.columns if c.startswith("version_"))
    versions = {}
    for name in version_columns:
        values = runs[name].dropna().astype(str)
        versions[name.removeprefix("version_")] = ", ".join(sorted(set(values)))
    commits = sorted({str(c) for c in runs.get("git_commit", pd.Series()).dropna()})
    return {"versions": versions, "commits": commits or ["unknown (not a git checkout)"]}


def run_links(runs: pd.DataFrame, output: Path) -> list[dict]:
    rows = []
    for record in runs.sort_values(["cell", "seed"]).to_dict("records"):
        rows.append(
            {
                "cell": record["cell"],
                "seed": record["seed"],
                "model": record.get("model"),
                "tasks": record.get("tasks"),
                "epochs": record.get("epochs"),
                "wall_seconds": record.get("wall_seconds"),
                "device": record.get("device"),
                "href": os.path.relpath(record["path"], output.parent),
            }
        )
    return rows


# ----------------------------------------------------------------------------- page


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(tables.TEMPLATES),
        autoescape=True,  # every value from the data is text, never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def number(value, digits=2, signed=False):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"

    env.filters["num"] = number
    env.filters["task_name"] = lambda task: TASK_NAMES.get(task, task)
    return env


def mark_flags(view: TableView, table: Table, below: dict, shipped: dict) -> None:
    """Flag the cells that say something: below a floor (floors.csv, cells the paper's own runs
    show failing aside), or with a mean outside the shipped same-preset reproduction's 95%
    interval (`shipped`: aggregate rows by (cell, task), as tables.lookup gives them)."""
    for row, (_, line) in zip(table.rows, view.rows, strict=True):
        for cell in line:
            if cell.mean is None:
                continue
            cell.below_floor = below.get((cell.cell, row.task), "")
            stats = shipped.get((cell.cell, row.task))
            if stats is not None:
                low, high = 100 * float(stats["ci_low"]), 100 * float(stats["ci_high"])
                cell.outside_shipped = not round(low, 2) <= round(cell.mean, 2) <= round(high, 2)


def floors_below(floor_rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(cell, task) -> the floors it is below, for the cells expected to clear them."""
    short = floors.shortfalls(floor_rows)
    short = short[short["verdict"] == floors.BELOW]
    found: dict[tuple[str, str], list[str]] = {}
    for row in short.itertuples():
        found.setdefault((row.cell, row.task), []).append(str(row.floor))
    return {key: " and ".join(names) for key, names in found.items()}


def table_views(
    grid: dict, summary, paper: dict, epochs, context, flags=({}, {}), curves=None, cells=None
):
    """(Tables 1-9 and the supplements after Tables 8 and 9, as TableViews with their plots
    embedded; plots by file name). With `cells` (a preset's subset), only the tables those
    cells are worth rendering for (workflow_src.spec.selection.tables_shown)."""
    below, shipped = flags
    plot_files: dict[str, bytes] = {}
    views = [tables.table1_view(grid, context.epoch_scale)]
    ordered = all_tables(grid)
    if cells:
        ordered = selection.tables_shown(ordered, cells)
    for table in ordered:
        view = table_view(table, summary, paper, context.stage)
        mark_flags(view, table, below, shipped)
        drawn = [
            ("bars", "Reproduced (bars, 95% interval) and paper (◆)", plots.bar_plot(view)),
            (
                "curves",
                "Dev metric per epoch (mean over seeds, min–max band)",
                plots.curve_plot(table, epochs),
            ),
        ]
        if curves is not None:
            drawn.append(
                (
                    "within",
                    "Dev metric within training, on a fixed dev sample (mean over seeds)",
                    plots.curve_plot(table, curves, x="update"),
                )
            )
        for kind, title, data in drawn:
            if data is not None:
                plot_files[f"{view.anchor}_{kind}.png"] = data
                view.plots.append({"title": title, "src": data_uri(data)})
        views.append(view)
    return views, plot_files


PIPELINE_CHECK_NOTE = (
    "This preset checks the pipeline: its runs train too little (a tenth of the paper's epochs, "
    "on small samples of each task) to say anything for or against the paper. The evidence at "
    "CPU scale is the cpu preset (full SST and STS data, 3 seeds, calibrated against the "
    "paper's regime in benchmarks/CALIBRATION.md), shipped with the package: its report is "
    "reference/cpu/report.html, and the README's 'What the reproduction found' reads it."
)


def page_notes(
    runs,
    summary,
    grid_cells: set[str],
    context: tables.Context,
    pipeline_check: bool = False,
    cells: list[str] | None = None,
) -> list[str]:
    """What the reader must know before reading any number on the page. `grid_cells`: every
    cell the tables show, supplements included; `cells`: those the preset trains (its
    `subset`), where not all of them."""
    notes = [PIPELINE_CHECK_NOTE] if pipeline_check else []
    for note in (context.encoder_note(), context.scale_note()):
        if note:
            notes.append(note)
    if "quora_train_standin" in runs.columns and runs["quora_train_standin"].astype(bool).any():
        notes.append(tables.STANDIN_NOTE)
    max_n = int(summary["n"].max()) if len(summary) else 0
    if max_n <= 1:
        notes.append(
            "One seed per cell: the table intervals and the claims' intervals count the dev "
            "sample only (F1 has no interval), not the spread between seeds, so table flags "
            "rest on one run each and every verdict is indicative."
        )
    elif max_n < claims.MIN_SEEDS:
        notes.append(
            f"Fewer than {claims.MIN_SEEDS} seeds per cell: every claim verdict is indicative."
        )
    chosen = grid_cells & set(cells) if cells else grid_cells
    outside = sorted(grid_cells - chosen)
    if outside:
        notes.append(
            f"The {context.preset} preset trains {len(chosen)} of the grid's {len(grid_cells)} "
            f"cells (its subset in config.yaml); the other {len(outside)}, and the tables and "
            f"claims that need only them, are not part of it: {', '.join(outside)}."
        )
    missing = sorted(chosen - set(runs["cell"]))
    if missing:
        cells_word = "cell" if len(missing) == 1 else "cells"
        notes.append(f"No runs yet for {len(missing)} {cells_word}: {', '.join(missing)}.")
    return notes


def all_tables(grid: dict) -> list[Table]:
    """Tables 2-9 and the supplements after Tables 8 and 9, in the page's order."""
    found = [*build_tables(grid).values(), *supplementary_tables(grid)]
    return sorted(found, key=lambda t: (t.number, bool(t.label)))


def shown_cells(grid: dict) -> set[str]:
    """Every cell the tables show, the supplements' included (the constant-lr cells)."""
    return {cell for table in all_tables(grid) for cell in table.cells()}


def scales(args) -> dict[str, list[verdicts.ClaimView]]:
    """The claims' verdicts by scale: this preset's first, then each --also-claims."""
    found = {args.preset: verdicts.load(args.claims_csv, args.claims)}
    for entry in args.also_claims:
        name, _, path = entry.partition("=")
        if not path:
            raise verdicts.VerdictsError(f"--also-claims {entry!r}: expected NAME=PATH")
        found[name] = verdicts.load(path, args.claims, strict=False)
    return found


def render(args) -> tuple[str, dict[str, bytes], dict[str, bytes]]:
    """The page, its plots (file name -> PNG bytes) and the forest plot ({"png", "pdf"})."""
    runs = pd.read_csv(args.metrics_csv)
    summary = aggregate.read_summary(args.summary_csv)
    paper = tables.load_paper(args.paper)
    grid = json.loads(args.grid_json)
    grid_tables = build_tables(grid)
    context = tables.context_from_args(args)
    floor_rows = pd.read_csv(args.floors_csv)
    shipped = (
        tables.lookup(aggregate.read_summary(args.shipped_summary[0]), context.stage)
        if args.shipped_summary
        else {}
    )
    curves = pd.read_csv(args.curves_csv) if args.curves_csv else None
    views, plot_files = table_views(
        grid,
        summary,
        paper,
        pd.read_csv(args.epochs_csv),
        context,
        (floors_below(floor_rows), shipped),
        curves,
        args.cells,
    )
    by_scale = scales(args)
    reproduced = by_scale[args.preset]
    figure = forest.render(by_scale)
    claim_list = [view.claim for view in reproduced]
    on_paper = {
        r.claim.id: r.verdict for r in claims.evaluate_on_paper(claim_list, grid_tables, paper)
    }
    page = (
        environment()
        .get_template(TEMPLATE)
        .render(
            title="Multi-Task Learning with BERT: reproduction report",
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            overview=overview(runs, context),
            notes=page_notes(
                runs, summary, shown_cells(grid), context, args.pipeline_check, args.cells
            ),
            sentences=verdicts.sentences(reproduced, args.preset),
            forest=data_uri(figure["png"]),
            other_scales=list(by_scale)[1:],
            decided_otherwise=verdicts.decided_otherwise(by_scale),
            other_claims={
                name: {view.claim.id: view for view in views}
                for name, views in list(by_scale.items())[1:]
            },
            preset=args.preset,
            tables=views,
            claims=reproduced,
            on_paper=on_paper,
            floors=floor_rows.to_dict("records"),
            floor_summary=floors.summary(floor_rows),
            expected_to_fail=floors.EXPECTED_TO_FAIL,
            min_seeds=claims.MIN_SEEDS,
            shipped=bool(shipped),
            provenance=provenance(runs),
            runs=run_links(runs, Path(args.output)),
        )
    )
    return page, plot_files, figure


def write_plots(directory: Path, plots: dict[str, bytes]) -> None:
    """Replace `directory` with one holding exactly `plots`, atomically (temp dir + rename)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    for name, data in plots.items():
        (staging / name).write_bytes(data)
    staging.chmod(0o755)  # mkdtemp makes it private
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(staging, directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics-csv", required=True)
    parser.add_argument("--summary-csv", required=True)
    parser.add_argument("--epochs-csv", required=True)
    parser.add_argument("--claims-csv", required=True, help="the claims' comparisons (analysis)")
    parser.add_argument("--floors-csv", required=True, help="each cell against its floors")
    parser.add_argument("--claims", required=True, help="claims.yaml")
    tables.add_context_options(parser)
    parser.add_argument("--output", required=True)
    parser.add_argument("--plots-dir", help="also write the plots here as PNG files")
    parser.add_argument("--forest", help="write the forest plot as FOREST.png and FOREST.pdf")
    parser.add_argument(
        "--also-claims",
        nargs="*",
        default=[],
        metavar="NAME=CSV",
        help="other shipped scales' claims.csv, drawn as a second marker per row",
    )
    parser.add_argument(
        "--shipped-summary",
        nargs="*",
        default=[],
        help="summary.csv of the shipped same-preset reproduction (none: no such flags)",
    )
    parser.add_argument("--curves-csv", help="within-epoch dev curves, when the runs have them")
    parser.add_argument(
        "--cells", nargs="*", help="the cells the preset trains (default: every cell of the grid)"
    )
    parser.add_argument(
        "--pipeline-check",
        action="store_true",
        help="the preset only checks the pipeline: say so first, and where the evidence is",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        page, plot_files, figure = render(args)
    except (verdicts.VerdictsError, OSError) as error:
        log.error("%s", error)
        return 1
    if args.plots_dir:
        write_plots(Path(args.plots_dir), plot_files)
    if args.forest:
        for kind, data in figure.items():
            write_bytes_atomic(f"{args.forest}.{kind}", data)
    write_text_atomic(args.output, page)
    log.info("report -> %s (%d plots, %d kB)", args.output, len(plot_files), len(page) // 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
