"""Does every cell train? Each single-task BERT cell against its task's two floors.

The floors are the BiLSTM baseline of Table 2 (the `<task>-bilstm` cell of the same run) and
the majority class, a constant predictor: the most frequent dev label for SST and Quora (the
accuracy of always saying it; taken on the dev set itself, so if anything the floor is too
high) and, for STS, any constant, whose Pearson r is 0. A cell's difference to a floor gets the
95% interval of the claims' model (workflow_src.analysis.statistics: the dev sample, paired on
the same examples, and the seeds; the BiLSTM's seeds unpaired with BERT's, the constant predictor
with none); the cell clears the floor when the whole interval lies above zero, is below it when
the whole interval lies below, and is unclear otherwise. `df` is the interval's degrees of
freedom; `fragile` says the verdict changes under the cautious variant of the model.

Three cells are expected to fail, because the paper's own runs of them do (EXPECTED_TO_FAIL):
they are checked and shown like the others, and left out of the count of cells that must clear.
`floors_frame` gives the rows of results/<preset>/floors.csv; the report renders them.
No torch.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from workflow_src.analysis.claims import CONTRADICTED, REPRODUCED, Comparison, Term
from workflow_src.analysis.outcomes import Outcomes
from workflow_src.analysis.verdicts import run_comparison
from workflow_src.spec.tasks import PRIMARY_METRIC

MAJORITY = "majority class"  # the pseudo-cell of the constant predictor
BILSTM = "{task}-bilstm"
# cell -> why the paper itself shows it failing (its numbers, report/paper_results.yaml)
EXPECTED_TO_FAIL = {
    "sst-finetune-none": "frozen encoder: the paper's 30.33 on SST (Table 6), near one class",
    "sts-finetune-none": "frozen encoder: the paper's r = 17.58 on STS (Table 6)",
    "sts-head-difference": "difference head: the paper's r = 3.69 on STS (Table 7)",
}
CLEARS, BELOW, UNCLEAR, NO_RUNS = "clears", "below", "unclear", "no runs"
VERDICTS = {REPRODUCED: CLEARS, CONTRADICTED: BELOW}
COLUMNS = [
    "cell",
    "task",
    "floor",
    "value",
    "floor_value",
    "difference",
    "ci_low",
    "ci_high",
    "seeds",
    "verdict",
    "expected_to_fail",
    "df",
    "fragile",
]


def single_task_bert_cells(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(cell, task) of every cell in metrics.csv's `runs` that trains BERT on one task, in
    the order of the runs."""
    single = runs[(runs.model == "bert") & ~runs.tasks.str.contains("+", regex=False)]
    return list(dict.fromkeys(zip(single.cell, single.tasks, strict=True)))


def majority_outcomes(outcomes: Outcomes, task: str) -> Outcomes:
    """The constant predictor on the dev examples of a cell's `outcomes`, repeated for each of
    its seeds (identical rows: the floor adds no seed variance, and counts no fewer seeds)."""
    gold = outcomes.gold
    if PRIMARY_METRIC[task] == "accuracy":
        counts = Counter(gold.tolist())
        constant = min(counts, key=lambda label: (-counts[label], label))
    else:
        constant = 0.0  # any constant has Pearson r = 0; zero computes it exactly
    predictions = np.full((len(outcomes.seeds), len(gold)), constant)
    value = float(np.mean(gold == constant)) * 100 if PRIMARY_METRIC[task] == "accuracy" else 0.0
    ones = (1,) * len(outcomes.seeds)
    return Outcomes(
        outcomes.seeds,
        outcomes.ids,
        gold,
        predictions,
        outcomes.stream,
        np.full(len(outcomes.seeds), value),
        ones,
        ones,
    )


def floor_row(cell: str, task: str, floor: str, outcomes: dict) -> dict:
    if floor == MAJORITY and (cell, task) in outcomes:
        outcomes = {**outcomes, (MAJORITY, task): majority_outcomes(outcomes[(cell, task)], task)}
    comparison = Comparison(task, (Term(1, cell, task),), "greater", (Term(1, floor, task),), 0.0)
    result = run_comparison(comparison, outcomes)
    return {
        "cell": cell,
        "task": task,
        "floor": floor,
        "value": result.left,
        "floor_value": result.right,
        "difference": result.diff,
        "ci_low": result.low,
        "ci_high": result.high,
        "seeds": result.n,
        "verdict": NO_RUNS if result.missing else VERDICTS.get(result.verdict, UNCLEAR),
        "expected_to_fail": cell in EXPECTED_TO_FAIL,
        "df": result.df,
        "fragile": result.fragile,
    }


def floors_frame(runs: pd.DataFrame, outcomes: dict) -> pd.DataFrame:
    """Two rows per single-task BERT cell of metrics.csv's `runs` (vs its BiLSTM, vs the
    majority class), from the runs' `outcomes` (outcomes.load_outcomes): floors.csv."""
    rows = [
        floor_row(cell, task, floor, outcomes)
        for cell, task in single_task_bert_cells(runs)
        for floor in (BILSTM.format(task=task), MAJORITY)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def shortfalls(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of cells that must clear (not expected to fail) and do not."""
    return frame[(frame.verdict != CLEARS) & ~frame.expected_to_fail.astype(bool)]


def summary(frame: pd.DataFrame) -> str:
    """One sentence: do the cells that should train clear both floors?"""
    cells = frame[~frame.expected_to_fail.astype(bool)].cell.nunique()
    short = shortfalls(frame)
    if short.empty:
        return f"All {cells} single-task BERT cells that should train clear both floors."
    failing = "; ".join(f"{row.cell} vs {row.floor}: {row.verdict}" for row in short.itertuples())
    return (
        f"{short.cell.nunique()} of the {cells} single-task BERT cells that should train do not "
        f"clear both floors ({failing})."
    )
