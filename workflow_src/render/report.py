"""The HTML report: every table reproduced beside the paper, the paper's claims checked, plots.

Rendered with Jinja2 (autoescape on, so text from the data is shown, never run) from the CSVs
that `workflow_src.analysis.aggregate` writes, each run's predictions.csv (found beside the metrics.json
that metrics.csv lists; the claims are checked on them) and the paper's numbers and claims
(`report/*.yaml`); it reads no metrics.json itself, it only links to them. Plots (matplotlib,
Agg) are embedded as base64 PNG, so `results/report.html` is one self-contained file; with
`--plots-dir` the same PNGs are also written there for Snakemake's own report. `--claims-csv`
writes the claims' comparisons as data (claims.CSV_COLUMNS), beside the page.

Command line (what `rules/report.smk` calls):
    python -m workflow_src.render.report --metrics-csv results/quick/metrics.csv \
        --summary-csv results/quick/summary.csv --epochs-csv results/quick/epochs.csv \
        --paper report/paper_results.yaml --claims report/claims.yaml \
        --grid-json '{...config grid...}' --preset quick --encoder embedded --seeds 1 \
        --epoch-scale 0.1 [--stage best] --output results/quick/report.html \
        [--plots-dir results/quick/plots] [--claims-csv results/quick/claims.csv]
"""

from __future__ import annotations

import argparse
import base64
import io
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
import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported
import matplotlib.pyplot as plt
import pandas as pd

from workflow_src.analysis import aggregate, claims, floors, outcomes, verdicts
from workflow_src.atomic import write_text_atomic
from workflow_src.render import tables
from workflow_src.render.tables import TableView, table_view
from workflow_src.spec.grid import TASK_NAMES, Table, build_tables, supplementary_tables
from workflow_src.spec.tasks import PRIMARY_METRIC

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
COLORS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2"]
DPI = 96


# ----------------------------------------------------------------------------- tables


def table1_view(grid: dict, epoch_scale: float) -> TableView:
    base = grid["base"]
    scaled = tables.scaled_epochs(grid, epoch_scale)
    rows = [
        (name, [base_value, f"{tried} (run here: {scaled})" if name == "Epochs" else tried])
        for name, base_value, tried in tables.table1_rows(grid)
    ]
    rows += [
        ("STS head (Table 7)", [base["sts_head"], tables.listing(grid["sts_head"])]),
        ("Optimizer (Table 8)", [base["optimizer"], f"{base['optimizer']}, adamw"]),
    ]
    return TableView(
        1, "Hyperparameter variation", "Hyperparameter", ("Base", "Variation"), rows, numeric=False
    )


# ----------------------------------------------------------------------------- plots


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def legend_above(figure, inches: float, handles: list, labels: list) -> None:
    """One legend above the axes, outside them (the constrained layout makes room for it), in as
    many columns as the figure's width in inches holds: a user's grid may bring dozens."""
    figure.legend(
        handles,
        labels,
        fontsize=7,
        frameon=False,
        ncols=max(1, min(len(labels), int(inches / 1.2))),
        loc="outside upper left",
    )


def bar_plot(view: TableView) -> bytes:
    """Reproduced means with 95% interval error bars per row and column; the paper as diamonds."""
    labels = [label for label, _ in view.rows]
    width = 0.8 / len(view.columns)
    # Wide enough for every bar (a user's grid may put dozens of columns in one table)
    inches = max(4.8, 1.6 + max(1.5, 0.12 * len(view.columns)) * len(labels))
    figure, axis = plt.subplots(figsize=(inches, 3.2), layout="constrained")
    for j, column in enumerate(view.columns):
        xs = [i + (j - (len(view.columns) - 1) / 2) * width for i in range(len(labels))]
        cells = [line[j] for _, line in view.rows]
        means = [c.mean if c.mean is not None else 0.0 for c in cells]
        errors = [
            [max(0.0, c.mean - c.low) if c.mean is not None else 0.0 for c in cells],
            [max(0.0, c.high - c.mean) if c.mean is not None else 0.0 for c in cells],
        ]
        axis.bar(xs, means, width * 0.92, label=column, color=COLORS[j % len(COLORS)])
        axis.errorbar(xs, means, yerr=errors, fmt="none", ecolor="#222", capsize=3, lw=1)
        paper = [(x, c.paper) for x, c in zip(xs, cells, strict=True) if c.paper is not None]
        if paper:
            axis.scatter(
                *zip(*paper, strict=True),
                marker="D",
                s=18,
                color="#111",
                zorder=3,
                label="paper" if j == 0 else None,
            )
    axis.set_xticks(range(len(labels)), [label.replace(" ", "\n", 1) for label in labels])
    axis.set_ylabel("percent")
    axis.spines[["top", "right"]].set_visible(False)
    legend_above(figure, inches, *axis.get_legend_handles_labels())
    return png(figure)


def curve_plot(table: Table, epochs: pd.DataFrame) -> bytes | None:
    """Per-epoch dev metric (mean over seeds, min-max band) of each column, one panel per row."""
    if epochs.empty:
        return None
    inches = 3.2 * len(table.rows)
    figure, axes = plt.subplots(
        1,
        len(table.rows),
        figsize=(inches, 2.6),
        squeeze=False,
        layout="constrained",
    )
    shown = epochs[epochs["cell"].isin({cell for row in table.rows for cell in row.cells})]
    curves = {  # (cell, task, metric) -> mean, min, max over seeds by epoch; grouped once
        key: frame.groupby("epoch")["value"].agg(["mean", "min", "max"]) * 100
        for key, frame in shown.groupby(["cell", "task", "metric"])
    }
    drawn = False
    for axis, row in zip(axes[0], table.rows, strict=True):
        metric = PRIMARY_METRIC[row.task]
        for j, (column, cell) in enumerate(zip(table.columns, row.cells, strict=True)):
            by_epoch = curves.get((cell, row.task, metric))
            if by_epoch is None:
                continue
            color = COLORS[j % len(COLORS)]
            axis.plot(by_epoch.index, by_epoch["mean"], marker="o", ms=3, color=color, label=column)
            axis.fill_between(
                by_epoch.index, by_epoch["min"], by_epoch["max"], color=color, alpha=0.15
            )
            drawn = True
        axis.set_title(row.label, fontsize=9)
        axis.set_xlabel("epoch")
        axis.spines[["top", "right"]].set_visible(False)
        axis.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].set_ylabel("dev, percent")
    if not drawn:
        plt.close(figure)
        return None
    legend = {}  # label -> line, over every panel (a column may lack runs in the first)
    for axis in axes[0]:
        legend.update(zip(*reversed(axis.get_legend_handles_labels()), strict=True))
    legend_above(figure, inches, list(legend.values()), list(legend))
    return png(figure)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


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


def table_views(grid: dict, summary, paper: dict, epochs, stage: str, epoch_scale: float):
    """(Tables 1-9 and the supplements after Tables 8 and 9, as TableViews with their plots
    embedded; plots by file name)."""
    plots: dict[str, bytes] = {}
    views = [table1_view(grid, epoch_scale)]
    ordered = sorted(
        [*build_tables(grid).values(), *supplementary_tables(grid)],
        key=lambda t: (t.number, bool(t.label)),
    )
    for table in ordered:
        view = table_view(table, summary, paper, stage)
        bars = bar_plot(view)
        plots[f"{view.anchor}_bars.png"] = bars
        view.plots.append(
            {"title": "Reproduced (bars, 95% interval) and paper (◆)", "src": data_uri(bars)}
        )
        curves = curve_plot(table, epochs[epochs["cell"].isin(table.cells())])
        if curves is not None:
            plots[f"{view.anchor}_curves.png"] = curves
            view.plots.append(
                {
                    "title": "Dev metric per epoch (mean over seeds, min–max band)",
                    "src": data_uri(curves),
                }
            )
        views.append(view)
    return views, plots


PIPELINE_CHECK_NOTE = (
    "This preset checks the pipeline: its runs train too little (a tenth of the paper's epochs, "
    "on small samples of each task) to say anything for or against the paper. The evidence at "
    "CPU scale is the cpu preset (full SST and STS data, 3 seeds, calibrated against the "
    "paper's regime in benchmarks/CALIBRATION.md), shipped with the package: its report is "
    "reference/cpu/report.html, and the README's 'What the reproduction found' reads it."
)


def page_notes(
    runs, summary, grid_tables: dict, context: tables.Context, pipeline_check: bool = False
) -> list[str]:
    """What the reader must know before reading any number on the page."""
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
    missing = sorted({c for t in grid_tables.values() for c in t.cells()} - set(runs["cell"]))
    if missing:
        notes.append(f"No runs yet for {len(missing)} cells: {', '.join(missing)}.")
    return notes


def render(args) -> tuple[str, dict[str, bytes], pd.DataFrame, pd.DataFrame]:
    """The page, its plots (file name -> PNG bytes), the claims' rows (claims.csv) and the
    floors' rows (floors.csv)."""
    runs = pd.read_csv(args.metrics_csv)
    summary = aggregate.read_summary(args.summary_csv)
    paper = tables.load_paper(args.paper)
    grid = json.loads(args.grid_json)
    grid_tables = build_tables(grid)
    claim_list = claims.load_claims(args.claims)
    context = tables.context_from_args(args)
    views, plots = table_views(
        grid, summary, paper, pd.read_csv(args.epochs_csv), context.stage, context.epoch_scale
    )
    run_outcomes = outcomes.load_outcomes(runs["path"])
    reproduced = verdicts.evaluate_runs(claim_list, run_outcomes)
    floor_rows = floors.floors_frame(runs, run_outcomes)
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
            notes=page_notes(runs, summary, grid_tables, context, args.pipeline_check),
            tables=views,
            claims=reproduced,
            on_paper=on_paper,
            floors=floor_rows.to_dict("records"),
            floor_summary=floors.summary(floor_rows),
            expected_to_fail=floors.EXPECTED_TO_FAIL,
            min_seeds=claims.MIN_SEEDS,
            provenance=provenance(runs),
            runs=run_links(runs, Path(args.output)),
            verdict_counts={
                verdict: sum(r.verdict == verdict for r in reproduced)
                for verdict in (claims.REPRODUCED, claims.CONTRADICTED, claims.INCONCLUSIVE)
            },
        )
    )
    return page, plots, verdicts.claims_frame(reproduced), floor_rows


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
    parser.add_argument("--claims", required=True, help="claims.yaml")
    tables.add_context_options(parser)
    parser.add_argument("--output", required=True)
    parser.add_argument("--plots-dir", help="also write the plots here as PNG files")
    parser.add_argument("--claims-csv", help="also write the claims' comparisons here")
    parser.add_argument("--floors-csv", help="also write each cell against its floors here")
    parser.add_argument(
        "--pipeline-check",
        action="store_true",
        help="the preset only checks the pipeline: say so first, and where the evidence is",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    page, plots, claim_rows, floor_rows = render(args)
    if args.plots_dir:
        write_plots(Path(args.plots_dir), plots)
    if args.claims_csv:
        aggregate.write_csv_atomic(claim_rows, args.claims_csv)
    if args.floors_csv:
        aggregate.write_csv_atomic(floor_rows, args.floors_csv)
    write_text_atomic(args.output, page)
    log.info("report -> %s (%d plots, %d kB)", args.output, len(plots), len(page) // 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
