"""The task table: one row per task, and every other module reads its facts from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workflow_src.analysis.metrics import METRICS
from workflow_src.spec.tasks import PRIMARY_METRIC, SPLIT_FILES, TASK, TASKS


def test_tasks_are_in_the_papers_round_robin_order():
    assert TASKS == ("sst", "quora", "sts")


def test_each_task_reads_the_columns_its_files_have(shared_data):
    """Text and label columns are the header of the task's dev file (quora-train may be absent
    from a mirror; train and dev share their header)."""
    for name, task in TASK.items():
        header = (shared_data / task.files["dev"]).read_text().split("\n", 1)[0].split("\t")
        assert header[1:] == ["id", *task.text_columns, task.label_column], name


def test_sentences_per_example_follow_the_text_columns():
    assert {name: task.sentences for name, task in TASK.items()} == {
        "sst": 1,
        "quora": 2,
        "sts": 2,
    }


def test_primary_metric_is_one_the_task_computes():
    for name, task in TASK.items():
        gold = [0, 1, 1, 0] if task.output != "regression" else [0.5, 1.5, 4.0, 2.0]
        assert task.primary_metric in METRICS[name]([0, 1, 0, 0], gold)
        assert PRIMARY_METRIC[name] == task.primary_metric


@pytest.mark.parametrize("split", ["train", "dev"])
def test_split_files_name_every_task_and_split(split):
    assert {task for task, s in SPLIT_FILES if s == split} == set(TASKS)


def test_the_task_table_does_not_load_torch():
    code = "import sys, workflow_src.spec.tasks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
