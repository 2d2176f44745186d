"""The claims at a glance: a forest plot of every comparison's difference and 95% interval.

One row per comparison of claims.csv, grouped by claim (in claims.yaml's order, the claim's
number and verdict at the left), the difference in percentage points with its interval as a
bar, coloured by the comparison's verdict; the region where the claim's rule holds (its margin)
is shaded on each row. A verdict the analysis marks fragile is drawn hollow. A second shipped
scale (another preset's claims.csv) is a second marker on the same row, a little below. The
plot draws what claims.csv says: it computes no interval and no verdict.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from workflow_src.analysis.claims import CONTRADICTED, INCONCLUSIVE, REPRODUCED
from workflow_src.render.verdicts import ClaimView, ComparisonView

VERDICT_COLORS = {REPRODUCED: "#1f7a4d", CONTRADICTED: "#b3261e", INCONCLUSIVE: "#c49000"}
BAND = "#4269d0"
ROW_INCHES = 0.125
DPI = 96
WIDTH_INCHES = 7.4
SCALE_MARKERS = ("o", "s", "^", "D")


def holds(op: str, margin: float, limit: float) -> tuple[float, float]:
    """Where on the difference axis the claim's rule holds, clipped to +-`limit`."""
    return {
        "greater": (margin, limit),
        "less": (-limit, -margin),
        "within": (-margin, margin),
        "not_greater": (-limit, margin),
    }[op]


def short_label(comparison: ComparisonView) -> str:
    """`sst-lr1e-5:sst - sst-lr1e-4:sst` -> `sst: lr1e-5 vs lr1e-4`, kept short for the axis."""
    cells = [
        term.split(":")[0] for term in comparison.describe.replace("|", " ").split() if ":" in term
    ]
    names = [
        cell.removeprefix(f"{comparison.task}-").replace("multitask-", "mt-") for cell in cells
    ]
    label = " vs ".join(names[:2]) + (" ..." if len(names) > 2 else "")
    return f"{comparison.task}: {label}"[:30]


def rows(scales: dict[str, list[ClaimView]]) -> list[tuple[int, ClaimView, int]]:
    """(claim number, claim, comparison index) per plotted row, from the first scale's claims."""
    first = next(iter(scales.values()))
    return [(view.number, view, index) for view in first for index in range(len(view.comparisons))]


def axis_limit(scales: dict[str, list[ClaimView]]) -> float:
    ends = [
        abs(value)
        for views in scales.values()
        for view in views
        for c in view.comparisons
        if not c.missing
        for value in (c.low, c.high, c.margin)
    ]
    return max(5.0, 1.08 * max(ends, default=5.0))


def draw(scales: dict[str, list[ClaimView]]):
    """The figure: `scales` maps a scale's name (a preset) to its ClaimViews, first one first."""
    plotted = rows(scales)
    limit = axis_limit(scales)
    height = max(2.5, ROW_INCHES * len(plotted) + 0.9)
    figure, axis = plt.subplots(figsize=(WIDTH_INCHES, height), layout="constrained")
    by_scale = {
        name: {(v.claim.id, c.describe): c for v in views for c in v.comparisons}
        for name, views in scales.items()
    }
    offset = 0.28 if len(scales) > 1 else 0.0
    labels, previous = [], None
    for y, (number, view, index) in enumerate(plotted):
        comparison = view.comparisons[index]
        low, high = holds(comparison.op, comparison.margin, limit)
        axis.fill_betweenx([y - 0.45, y + 0.45], low, high, color=BAND, alpha=0.10, lw=0)
        for k, found in enumerate(by_scale.values()):
            shown = found.get((view.claim.id, comparison.describe))
            if shown is None or shown.missing:
                continue
            color = VERDICT_COLORS.get(shown.verdict, "#777")
            at = y + k * offset
            axis.plot([shown.low, shown.high], [at, at], color=color, lw=1.6)
            axis.plot(
                [shown.difference],
                [at],
                marker=SCALE_MARKERS[k % len(SCALE_MARKERS)],
                ms=4.5,
                color=color,
                markerfacecolor="white" if shown.fragile else color,
                markeredgewidth=1.2,
            )
        label = short_label(comparison)
        if number != previous:
            if previous is not None:
                axis.axhline(y - 0.5, color="#ccd", lw=0.6)
            label = f"[{number}] {label}"
            previous = number
        labels.append(label)
    axis.axvline(0, color="#333", lw=0.8)
    axis.set_yticks(range(len(plotted)), labels, fontsize=6.5)
    axis.set_ylim(len(plotted) - 0.5 + offset, -0.7)
    axis.set_xlim(-limit, limit)
    axis.set_xlabel("difference, percentage points (95% interval)", fontsize=8)
    axis.tick_params(axis="x", labelsize=7)
    axis.spines[["top", "right"]].set_visible(False)
    figure.legend(
        handles=legend_handles(list(scales)),
        fontsize=6.5,
        frameon=False,
        loc="outside upper center",
        ncols=4,
    )
    return figure


def legend_handles(names: list[str]) -> list:
    handles = [
        Line2D([], [], color=color, marker="o", lw=1.6, ms=4.5, label=verdict)
        for verdict, color in VERDICT_COLORS.items()
    ]
    handles.append(
        Line2D([], [], color="#555", marker="o", markerfacecolor="white", lw=0, label="fragile")
    )
    handles.append(Patch(color=BAND, alpha=0.15, label="where the claim holds"))
    if len(names) > 1:
        handles += [
            Line2D([], [], color="#555", marker=SCALE_MARKERS[k % 4], lw=0, label=f"{name} scale")
            for k, name in enumerate(names)
        ]
    return handles


def render(scales: dict[str, list[ClaimView]]) -> dict[str, bytes]:
    """The forest plot as {"png": ..., "pdf": ...}."""
    figure = draw(scales)
    files = {}
    for kind in ("png", "pdf"):
        buffer = io.BytesIO()
        metadata = {"CreationDate": None} if kind == "pdf" else {"Software": None}
        figure.savefig(buffer, format=kind, dpi=DPI, metadata=metadata)
        files[kind] = buffer.getvalue()
    plt.close(figure)
    return files
