"""The paper's Tables 1-9 as LaTeX (booktabs), regenerated from the runs, beside the paper's values.

Table 1 is the experiment grid from the config. Tables 2-9 take their layout (rows, columns,
caption, where the paper bolds) from `workflow_src.spec.grid` and their numbers from a summary (the
same `aggregate.summarize` that writes summary.csv). Each table is built once as data,
`table_view` -> `TableView` of `CellView`s, which both renderers format: `latex_cell` here, the
HTML report's template there. In LaTeX each cell reads "reproduced mean (± sd when
n > 1) / paper value", in percent like the paper (SST and Quora dev accuracy, STS dev Pearson r
x 100). The best reproduced value per row (per column for Table 7) is bold; the paper's value is
bold where the paper prints it bold. The caption names the preset, encoder and seeds, and the
caveats that make a preset's numbers incomparable with the paper's.

Templates live in `report/templates/` and use LaTeX-safe delimiters: `((* block *))`,
`((( variable )))`, `((= comment =))`. Every value reaching a template is escaped for LaTeX
unless the code wrapped it in `Tex` (a string already written as LaTeX).

Command line (what `rules/report.smk` calls), Tables 2-9 from their runs, Table 1 from the grid:
    python -m workflow_src.render.tables --table 9 --output results/table9.tex \
        --grid-json '{...config grid...}' --paper report/paper_results.yaml \
        --preset quick --encoder embedded --seeds 1 --epoch-scale 0.1 [--stage best] \
        (--runs results/runs/quick/multitask-*/seed*/metrics.json | --summary results/summary.csv)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from workflow_src.analysis import aggregate, claims
from workflow_src.atomic import write_text_atomic
from workflow_src.render.context import (  # noqa: F401 (re-exported for the report)
    MINILM_NOTE,
    STAGE_WORDS,
    STANDIN_NOTE,
    Context,
    add_context_options,
    context_from_args,
)
from workflow_src.spec.grid import Table, build_tables, slug, table_numbers
from workflow_src.spec.tasks import PRIMARY_METRIC

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "report" / "templates"
TABLE1_FINETUNE = {
    "all": "Finetune all",
    "last2": "last 2 finetune",
    "last1": "last 1 finetune",
    "none": "pretrain",
}


class Tex(str):
    """A string already written as LaTeX: templates print it as is."""


_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\ensuremath{<}",
    ">": r"\ensuremath{>}",
    "|": r"\ensuremath{|}",
}
_SPECIALS_RE = re.compile("|".join(re.escape(char) for char in _SPECIALS))


def escape(text) -> Tex:
    """Any value as LaTeX text: every special character escaped, Tex passed through."""
    if isinstance(text, Tex):
        return text
    return Tex(_SPECIALS_RE.sub(lambda match: _SPECIALS[match.group()], str(text)))


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
        finalize=escape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        autoescape=False,  # finalize escapes for LaTeX instead of HTML
    )


def reproduction_sentence(context: Context) -> Tex:
    seeds = ", ".join(str(seed) for seed in context.seeds)
    return Tex(
        f"Reproduced at preset {escape(context.preset)}, encoder "
        f"{escape(context.encoder_name())}, seed{'s' if len(context.seeds) > 1 else ''} "
        f"{escape(seeds)}; {escape(STAGE_WORDS.get(context.stage, context.stage))}."
    )


# ----------------------------------------------------------------------------- Tables 2-9


@dataclass
class CellView:
    """One cell of Tables 2-9 as data: reproduced statistics beside the paper's value."""

    cell: str
    n: int = 0
    mean: float | None = None  # percent
    sd: float | None = None  # percent; None with one seed
    low: float | None = None  # 95% interval (seeds and dev sample, aggregate.py), percent
    high: float | None = None
    paper: float | None = None
    paper_bold: bool = False  # the paper prints it bold
    best: bool = False  # best reproduced value of its row or column (Table.bold)

    below_floor: str = ""  # the floor it does not clear (floors.csv), if any
    outside_shipped: bool = False  # mean outside the shipped same-preset interval

    @property
    def delta(self) -> float | None:
        return None if self.mean is None or self.paper is None else self.mean - self.paper

    @property
    def flagged(self) -> bool:
        """Something worth a look: below a floor, or away from the shipped reproduction of
        the same preset (never the paper's value, which comes from another scale)."""
        return bool(self.below_floor) or self.outside_shipped

    @property
    def flag_reason(self) -> str:
        reasons = [f"below its floor ({self.below_floor})"] if self.below_floor else []
        if self.outside_shipped:
            reasons.append("mean outside the shipped reproduction's 95% interval")
        return "; ".join(reasons)


@dataclass
class TableView:
    """One paper table as data; `latex_cell` and the HTML template format it."""

    number: int
    caption: str
    row_header: str
    columns: tuple[str, ...]
    rows: list[tuple[str, list]] = field(default_factory=list)  # (label, [CellView | str])
    plots: list[dict] = field(default_factory=list)  # {"title", "src"}, the HTML report's
    numeric: bool = True
    bold: str = "none"  # where the best reproduced value is bold: "row", "column", "none"
    label: str = ""  # heading, when not "Table <number>" (a supplement)

    @property
    def heading(self) -> str:
        return self.label or f"Table {self.number}"

    @property
    def anchor(self) -> str:
        """HTML id and plot file stem: table8, or table8-supplement for a supplement."""
        return f"table{self.number}" + ("-supplement" if self.label else "")


def paper_text(value: float) -> str:
    """A paper value as printed: 52.4 stays 52.4, 76.32 stays 76.32."""
    return f"{value:g}"


def lookup(summary: pd.DataFrame, stage: str) -> dict[tuple[str, str], pd.Series]:
    """(cell, task) -> the summary row of that task's primary metric."""
    rows = {}
    for _, row in summary[summary["stage"] == stage].iterrows():
        if PRIMARY_METRIC.get(row["task"]) == row["metric"]:
            rows[(row["cell"], row["task"])] = row
    return rows


def best_positions(table: Table, means: list[list[float | None]]) -> set[tuple[int, int]]:
    """(row, column) of the best reproduced value per row, or per column, as `table.bold` says."""
    if table.bold == "none":
        return set()
    groups: list[list[tuple[int, int]]]
    if table.bold == "row":
        groups = [[(i, j) for j in range(len(table.columns))] for i in range(len(table.rows))]
    else:
        groups = [[(i, j) for i in range(len(table.rows))] for j in range(len(table.columns))]
    best = set()
    for group in groups:
        # compare as printed, so values that print the same are bold together
        shown = {
            pos: round(means[pos[0]][pos[1]], 4)
            for pos in group
            if means[pos[0]][pos[1]] is not None
        }
        if shown:
            top = max(shown.values())
            best |= {pos for pos, value in shown.items() if value == top}
    return best


def cell_view(cell: str, stats: pd.Series | None) -> CellView:
    """A cell's reproduced statistics in percent (none without runs)."""
    view = CellView(cell)
    if stats is not None:
        view.n = int(stats["n"])
        view.mean = 100 * float(stats["mean"])
        view.sd = None if math.isnan(float(stats["sd"])) else 100 * float(stats["sd"])
        view.low, view.high = 100 * float(stats["ci_low"]), 100 * float(stats["ci_high"])
    return view


def table_view(table: Table, summary: pd.DataFrame, paper: dict | None, stage: str) -> TableView:
    """One of Tables 2-9 as data, built once for LaTeX and HTML: each cell's reproduced
    statistics, the paper's value and bold mark, and the best reproduced value per row or
    column (compared as printed: two decimals of a percent)."""
    found = lookup(summary, stage)
    printed = (paper or {}).get("tables", {}).get(table.number)
    paper_bold = {tuple(pair) for pair in printed["bold"]} if printed else set()
    grid_rows, fractions = [], []
    for row in table.rows:
        line = [cell_view(cell, found.get((cell, row.task))) for cell in row.cells]
        for column, view in zip(table.columns, line, strict=True):
            if printed:
                view.paper = claims.paper_value(printed, row.label, column)
                view.paper_bold = (row.label, column) in paper_bold
        grid_rows.append(line)
        fractions.append(
            [
                float(found[(c, row.task)]["mean"]) if (c, row.task) in found else None
                for c in row.cells
            ]
        )
    for i, j in best_positions(table, fractions):
        grid_rows[i][j].best = True
    rows = [(row.label, line) for row, line in zip(table.rows, grid_rows, strict=True)]
    return TableView(
        table.number,
        table.caption,
        table.row_header,
        table.columns,
        rows,
        bold=table.bold,
        label=table.label,
    )


def latex_cell(view: CellView) -> Tex:
    """reproduced mean (± sd with more than one seed) / paper value, bold as the view says."""
    if view.mean is None:
        text = Tex("--")
    else:
        text = escape(f"{view.mean:.2f}")
        if view.best:
            text = Tex(rf"\textbf{{{text}}}")
        if view.n > 1 and view.sd is not None:
            text = Tex(rf"{text}\,$\pm$\,{escape(f'{view.sd:.2f}')}")
    paper_cell = Tex("--") if view.paper is None else escape(paper_text(view.paper))
    if view.paper_bold:
        paper_cell = Tex(rf"\textbf{{{paper_cell}}}")
    return Tex(f"{text} / {paper_cell}")


def latex_rows(view: TableView) -> list[dict]:
    """The view's rows as LaTeX: numeric cells through latex_cell, text cells escaped."""
    show = latex_cell if view.numeric else escape
    return [{"label": label, "cells": [show(cell) for cell in line]} for label, line in view.rows]


def render_view(view: TableView, text: Tex) -> str:
    """A TableView as a LaTeX table float captioned `text`."""
    return (
        environment()
        .get_template("table.tex.j2")
        .render(
            number=view.number,
            short_caption=view.caption,
            caption=text,
            column_spec=Tex("c" * len(view.columns)),
            row_header=view.row_header,
            columns=view.columns,
            rows=latex_rows(view),
        )
    )


def caption(table: Table, context: Context) -> Tex:
    where = {"row": "per row", "column": "per column"}.get(table.bold)
    parts = [
        escape(f"{table.caption}."),
        Tex(
            r"Each cell: reproduced mean ($\pm$ sd over seeds) / paper value, in percent "
            r"(SST and Quora accuracy, STS Pearson $r\times 100$)."
        ),
    ]
    if where:
        parts.append(escape(f"Best reproduced value {where} in bold; paper bold as printed."))
    parts.append(reproduction_sentence(context))
    if table.number != 2 and context.encoder_note():  # Table 2 is the BiLSTM: no encoder
        parts.append(escape(context.encoder_note()))
    if context.scale_note():
        parts.append(escape(context.scale_note()))
    if context.quora_standin and any(row.task == "quora" for row in table.rows):
        parts.append(escape(STANDIN_NOTE))
    return Tex(" ".join(parts))


def render_table(table: Table, summary: pd.DataFrame, paper: dict | None, context: Context) -> str:
    """One of Tables 2-9 as a LaTeX table float."""
    return render_view(table_view(table, summary, paper, context.stage), caption(table, context))


# ----------------------------------------------------------------------------- Table 1


def listing(values, show=str) -> str:
    return ", ".join(show(value) for value in values)


def table1_view(grid: dict, epoch_scale: float) -> TableView:
    """Table 1, the hyperparameter grid as configured (base value, values tried), with the
    epochs the preset runs and the STS heads (Table 7) and optimisers (Table 8) it tries: the
    one model that both the LaTeX table and the report's table are rendered from."""
    base = grid["base"]
    finetune = lambda v: TABLE1_FINETUNE.get(v, v)  # noqa: E731
    rows = [
        ("Dropout", [f"{base['dropout']:g}", listing(grid["dropout"], lambda v: f"{v:g}")]),
        ("Learning Rate", [slug(base["lr"]), listing(grid["lr"], slug)]),
        ("Layer Freezing", [finetune(base["finetune"]), listing(grid["finetune"], finetune)]),
        (
            "Epochs",
            [
                str(base["epochs"]),
                f"{listing(grid['epochs'])} (run here: {scaled_epochs(grid, epoch_scale)})",
            ],
        ),
        ("STS head (Table 7)", [base["sts_head"], listing(grid["sts_head"])]),
        ("Optimizer (Table 8)", [base["optimizer"], f"{base['optimizer']}, adamw"]),
    ]
    return TableView(
        1, "Hyperparameter variation", "Hyperparameter", ("Base", "Variation"), rows, numeric=False
    )


def scaled_epochs(grid: dict, epoch_scale: float) -> str:
    """The epochs a preset runs for the paper's 10/20/30 (as grid.cell_settings scales them)."""
    return listing(grid["epochs"], lambda e: str(max(1, round(e * epoch_scale))))


def render_table1(grid: dict, context: Context) -> str:
    """Table 1, the hyperparameter grid, from the config (base value and the values tried)."""
    text = Tex(
        " ".join(
            [
                escape("Hyperparameter variation."),
                escape(
                    f"The paper's grid, as configured; at preset {context.preset} epochs are "
                    f"scaled by {context.epoch_scale:g}."
                ),
                reproduction_sentence(context),
            ]
        )
    )
    return render_view(table1_view(grid, context.epoch_scale), text)


def document(bodies: list[str]) -> str:
    """A standalone LaTeX document holding the given tables (for checking they compile)."""
    return (
        environment()
        .get_template("tables_document.tex.j2")
        .render(bodies=[Tex(body) for body in bodies])
    )


# ----------------------------------------------------------------------------- command


def load_paper(path: str | Path) -> dict:
    paper = yaml.safe_load(Path(path).read_text())
    paper["tables"] = {int(number): table for number, table in paper["tables"].items()}
    return paper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--table", type=int, required=True, help="1-9, or 10-12 for an extra axis (grid.py)"
    )
    parser.add_argument("--output", required=True)
    add_context_options(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--runs", nargs="*", default=[], help="metrics.json of the table's cells")
    source.add_argument("--summary", help="summary.csv instead of runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    grid = json.loads(args.grid_json)
    if args.table not in table_numbers(grid):
        parser.error(f"--table {args.table}: the grid has tables {table_numbers(grid)}")
    context = context_from_args(args)
    if args.table == 1:
        text = render_table1(grid, context)
    else:
        table = build_tables(grid)[args.table]
        if args.summary:
            summary = aggregate.read_summary(args.summary)
        elif args.runs:
            try:
                runs, _ = aggregate.load_runs(args.runs)
            except aggregate.MetricsError as error:
                log.error("%s", error)
                return 1
            summary = aggregate.summarize(runs)
            standin = bool(runs["quora_train_standin"].any())
            context = dataclasses.replace(context, quora_standin=standin)
        else:
            parser.error(f"Table {args.table} needs --runs or --summary")
        missing = [cell for cell in table.cells() if cell not in set(summary["cell"])]
        if missing:
            log.warning("Table %d: no runs for cells %s (shown as --)", args.table, missing)
        text = render_table(table, summary, load_paper(args.paper), context)
    write_text_atomic(args.output, text)
    log.info("Table %d -> %s", args.table, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
