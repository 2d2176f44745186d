"""The report's plots (matplotlib, Agg): each table's bars, and dev curves where they inform.

Bars: reproduced means with their 95% intervals (from summary.csv) per row and column, the
paper's values as diamonds. Curves: the dev metric per epoch (epochs.csv), mean over seeds with
the min-max band; a series of one point (a cell trained for one epoch) is no curve and is not
drawn, and a table none of whose series has two points gets no curve plot. Within-epoch
points (curves.csv from workflow_src.analysis.curves: dev metrics every k updates on a fixed
dev sample, where the runs record them) are drawn against the update, so a one-epoch cell still
shows a learning curve.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported
import matplotlib.pyplot as plt
import pandas as pd

from workflow_src.render.tables import TableView
from workflow_src.spec.grid import Table
from workflow_src.spec.tasks import PRIMARY_METRIC

COLORS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2"]
DPI = 96


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


def curve_plot(table: Table, points: pd.DataFrame, x: str = "epoch") -> bytes | None:
    """The dev metric against `x` (epoch, or update for within-epoch curves) of each column,
    mean over seeds with the min-max band, one panel per row; series of fewer than two points
    are left out, and None is returned when no series is left."""
    if points.empty:
        return None
    shown = points[points["cell"].isin(table.cells())]
    curves = {  # (cell, task, metric) -> mean, min, max over seeds by x; grouped once
        key: frame.groupby(x)["value"].agg(["mean", "min", "max"]) * 100
        for key, frame in shown.groupby(["cell", "task", "metric"])
        if frame[x].nunique() >= 2
    }
    if not curves:
        return None
    inches = 3.2 * len(table.rows)
    figure, axes = plt.subplots(
        1, len(table.rows), figsize=(inches, 2.6), squeeze=False, layout="constrained"
    )
    for axis, row in zip(axes[0], table.rows, strict=True):
        metric = PRIMARY_METRIC[row.task]
        for j, (column, cell) in enumerate(zip(table.columns, row.cells, strict=True)):
            by_x = curves.get((cell, row.task, metric))
            if by_x is None:
                continue
            color = COLORS[j % len(COLORS)]
            axis.plot(by_x.index, by_x["mean"], marker="o", ms=3, color=color, label=column)
            axis.fill_between(by_x.index, by_x["min"], by_x["max"], color=color, alpha=0.15)
        axis.set_title(row.label, fontsize=9)
        axis.set_xlabel(x)
        axis.spines[["top", "right"]].set_visible(False)
        axis.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].set_ylabel("dev, percent")
    legend = {}  # label -> line, over every panel (a column may lack runs in the first)
    for axis in axes[0]:
        legend.update(zip(*reversed(axis.get_legend_handles_labels()), strict=True))
    legend_above(figure, inches, list(legend.values()), list(legend))
    return png(figure)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()
