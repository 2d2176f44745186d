"""CS224N submission files in the starter's format from a multi-task run (workflow_src/train/submit.py)."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from tests.conftest import REPO_ROOT, save_tiny_bert
from workflow_src.data import download as data
from workflow_src.data import read
from workflow_src.spec.config import TrainConfig
from workflow_src.train import loop as train
from workflow_src.train import submit

DATA = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["data"]


def test_rows_are_written_exactly_as_the_starters_test_model_writes_them():
    assert submit.starter_csv("sst", ["a1", "b2"], [3, 0]) == (
        "id \t Predicted_Sentiment \na1 , 3 \nb2 , 0 \n"
    )
    assert submit.starter_csv("quora", ["q"], [1]) == "id \t Predicted_Is_Paraphrase \nq , 1.0 \n"
    assert submit.starter_csv("sts", ["s"], [2.5]) == "id \t Predicted_Similiary \ns , 2.5 \n"


@pytest.fixture(scope="module")
def test_dir(tmp_path_factory, shared_data):
    """The test-student files as the download rule fetches them from the offline mirror, which
    lacks quora-test-student.csv."""
    dest = tmp_path_factory.mktemp("cs224n-test")
    data.fetch(
        dest, DATA["test_files"], DATA["base_url"], DATA["commit"], shared_data, optional=True
    )
    return dest


def test_a_mirror_without_a_test_file_skips_it_and_says_so(test_dir, shared_data, tmp_path):
    provenance = data.read_provenance(test_dir)
    assert set(provenance["files"]) == {"ids-sst-test-student.csv", "sts-test-student.csv"}
    assert "quora-test-student.csv" in provenance["skipped"]
    with pytest.raises(data.DataError, match=r"quora-test-student\.csv: not in the data mirror"):
        data.fetch(tmp_path, DATA["test_files"], DATA["base_url"], DATA["commit"], shared_data)


def test_submission_files_from_the_best_epoch_of_a_multitask_run(tmp_path, prepared_data, test_dir):
    encoder = save_tiny_bert(tmp_path / "bert")
    cfg = TrainConfig.from_dict(
        {"run_name": "multitask-additive", "tasks": ["sst", "quora", "sts"], "encoder": str(encoder),
         "data_dir": str(prepared_data), "epochs": 2, "batch_size": 16, "max_length": 32,
         "train_limit": 32, "dev_limit": 32, "device": "cpu", "precision": "fp32",
         "keep_best": True, "sts_head": "multiply"}
    )  # fmt: skip
    run_dir = tmp_path / "run"
    train.run(cfg, 1, run_dir)
    out = tmp_path / "submission"
    assert (
        submit.main(["--run-dir", str(run_dir), "--test-dir", str(test_dir), "--out-dir", str(out)])
        == 0
    )

    manifest = json.loads((out / "submission.json").read_text())
    assert sorted(manifest["written"]) == sorted(
        f"{p}-{s}-output.csv" for p in ("sst", "para", "sts") for s in ("dev", "test")
        if (p, s) != ("para", "test")
    )  # fmt: skip
    assert "quora-test-student.csv" in manifest["skipped"]["para-test-output.csv"]
    assert not (out / "para-test-output.csv").exists()

    def rows(name):
        lines = (out / name).read_text().splitlines()
        return lines[0], [line.split(" , ") for line in lines[1:]]

    header, sst_test = rows("sst-test-output.csv")
    assert header == "id \t Predicted_Sentiment "
    with (test_dir / "ids-sst-test-student.csv").open(newline="") as handle:
        test_ids = [r[2] for r in list(csv.reader(handle, delimiter="\t"))[1:]]
    assert [row_id for row_id, _ in sst_test] == test_ids  # every test row, in file order
    assert {value for _, value in sst_test} <= {f"{k} " for k in range(5)}
    header, para_dev = rows("para-dev-output.csv")
    assert header == "id \t Predicted_Is_Paraphrase "
    assert {value for _, value in para_dev} <= {"0.0 ", "1.0 "}
    full_dev = read.load_split(prepared_data, "quora", "dev").examples
    assert len(para_dev) == len(full_dev)  # the whole dev split, not the run's dev_limit
    header, sts_test = rows("sts-test-output.csv")
    assert header == "id \t Predicted_Similiary " and len(sts_test) == 1725
    float(sts_test[0][1])


def test_a_run_without_best_weights_fails_naming_the_file(tmp_path, test_dir):
    (tmp_path / "metrics.json").write_text("{}")
    code = submit.main(["--run-dir", str(tmp_path), "--test-dir", str(test_dir),
                        "--out-dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert not (tmp_path / "out").exists()
