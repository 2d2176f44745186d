"""The three tasks of the paper, one row each: every per-task fact is declared here and only here.

Like Hugging Face `run_glue.py`'s `task_to_keys` or mt-dnn's task definition file: what a task
reads (files, text and label columns), how it is scored (primary metric), what its head puts out
(output kind, number of outputs) and how many sentences one example has. The data reader, the
batcher, the model's heads, the metrics, the claims and the renderers all ask this table, so
adding a task is a row here (plus its loss and prediction in `model.TASK_SPECS` and its metric
function in `metrics.METRICS`). No torch here: the DAG and the renderers import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str  # short id used in cell ids, metrics.json and every CSV
    file_prefix: str  # its files are <prefix>-train.csv and <prefix>-dev.csv
    text_columns: tuple[str, ...]  # one column per sentence of an example
    label_column: str
    primary_metric: str  # the metric the tables show and the best epoch is picked by
    output: str  # what the head puts out: multiclass | binary | regression (SMART's l_s too)
    outputs: int  # head outputs: classes for multiclass (SST: sentiment 0..4), 1 otherwise

    @property
    def files(self) -> dict[str, str]:
        """split (train, dev) -> file name in the CS224N data folder."""
        return {split: f"{self.file_prefix}-{split}.csv" for split in ("train", "dev")}

    @property
    def sentences(self) -> int:
        """Sentences per example: 1 (a sentence) or 2 (a pair)."""
        return len(self.text_columns)


PAIR = ("sentence1", "sentence2")
# One line per task, in the canonical order: round robin trains in this order (paper section 4).
# Task(name, file prefix, text columns, label column, primary metric, output kind, outputs)
_ROWS = (
    Task("sst", "ids-sst", ("sentence",), "sentiment", "accuracy", "multiclass", 5),
    Task("quora", "quora", PAIR, "is_duplicate", "accuracy", "binary", 1),  # 1 logit
    Task("sts", "sts", PAIR, "similarity", "pearson", "regression", 1),  # similarity 0..5
)

TASK: dict[str, Task] = {task.name: task for task in _ROWS}
TASKS: tuple[str, ...] = tuple(TASK)
PRIMARY_METRIC: dict[str, str] = {task.name: task.primary_metric for task in _ROWS}
SPLIT_FILES: dict[tuple[str, str], str] = {
    (task.name, split): name for task in _ROWS for split, name in task.files.items()
}
