"""CS224N submission files from a multi-task run's best epoch.

The starter code's `multitask_classifier.py` (gpoesia/minbert-default-final-project) ends with
`test_model`, which writes six files that students hand in; this writes the same six, in the
same format, from a multi-task cell's best-epoch weights (`best.safetensors`, which multi-task
cells always keep):

    sst-dev-output.csv   sst-test-output.csv    header "id \\t Predicted_Sentiment "
    para-dev-output.csv  para-test-output.csv   header "id \\t Predicted_Is_Paraphrase "
    sts-dev-output.csv   sts-test-output.csv    header "id \\t Predicted_Similiary " (sic)

each row "<id> , <prediction> " as the starter writes them (paraphrase as 0.0 / 1.0). Dev
files cover the whole dev split (the starter's sst-dev-output.csv pairs dev ids with test
predictions, a bug not copied here). Test inputs are the `*-test-student.csv` files of the
pinned commit (data/cs224n-test/); a file the offline mirror lacks is skipped, and
`submission.json` beside the outputs lists what was written and what was skipped and why.

    python -m workflow_src.train.submit --run-dir results/runs/paper/multitask-smart/seed1 \
        --test-dir data/cs224n-test --out-dir results/paper/submission/multitask-smart
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from workflow_src.atomic import write_text_atomic
from workflow_src.data.download import read_provenance
from workflow_src.data.read import DataError, PairExample, SentenceExample, iter_rows, load_split

log = logging.getLogger(__name__)

# task -> (file prefix, the starter's header column); dev/test files: <prefix>-<split>-output.csv
STARTER_OUTPUTS = {
    "sst": ("sst", "Predicted_Sentiment"),
    "quora": ("para", "Predicted_Is_Paraphrase"),
    "sts": ("sts", "Predicted_Similiary"),
}
TEST_FILES = {
    "sst": "ids-sst-test-student.csv",
    "quora": "quora-test-student.csv",
    "sts": "sts-test-student.csv",
}
BEST_WEIGHTS = "best.safetensors"
MANIFEST = "submission.json"


def starter_csv(task: str, ids: list[str], predictions: list) -> str:
    """One output file, byte for byte as the starter's test_model writes it."""
    header = STARTER_OUTPUTS[task][1]
    lines = [f"id \t {header} \n"]
    for row_id, prediction in zip(ids, predictions, strict=True):
        value = float(prediction) if task == "quora" else prediction  # starter: sigmoid().round()
        lines.append(f"{row_id} , {value} \n")
    return "".join(lines)


def load_test_split(test_dir: Path, task: str) -> list:
    """The unlabelled test examples of `task` (labels 0: the batcher needs a value)."""
    path = Path(test_dir) / TEST_FILES[task]
    columns = ("sentence",) if task == "sst" else ("sentence1", "sentence2")
    examples = []
    for line, row, error in iter_rows(path):
        if error is not None or not row.get("id", "").strip():
            raise DataError(
                f"{path}:{line}: {error or 'empty id'}; every test row needs a prediction"
            )
        texts = [row[column] for column in columns]
        if task == "sst":
            examples.append(SentenceExample(row["id"], texts[0], 0))
        else:
            examples.append(PairExample(row["id"], texts[0], texts[1], 0.0))
    return examples


def load_best_model(run_dir: Path):
    """(TrainConfig, model with the best epoch's weights, tokenizer, device) of a finished run."""
    from workflow_src.spec.config import TrainConfig
    from workflow_src.train import checkpoint
    from workflow_src.train.build import build_model, set_up_torch

    weights = Path(run_dir) / BEST_WEIGHTS
    if not weights.exists():
        raise DataError(
            f"{weights}: missing. Submission files need the best epoch's weights, which "
            "multi-task cells keep (keep_best); rerun the cell under this version of the workflow."
        )
    record = json.loads((Path(run_dir) / "metrics.json").read_text())
    cfg = TrainConfig.from_dict(record["settings"])
    device = set_up_torch(cfg)
    model, tokenizer = build_model(cfg)
    try:
        model.load_state_dict(checkpoint.load_best(run_dir))  # checked against its digest
    except checkpoint.CheckpointError as error:
        raise DataError(str(error)) from None
    return cfg, model.to(device), tokenizer, device


def write_submission(run_dir: Path, test_dir: Path, out_dir: Path) -> dict:
    """The six starter files (test ones only where the test file exists) and submission.json."""
    from workflow_src.data.batching import tokenize_split
    from workflow_src.train.evaluate import predict

    cfg, model, tokenizer, device = load_best_model(run_dir)
    pad_id = tokenizer.pad_token_id or 0
    skipped = read_provenance(test_dir).get("skipped", {})
    manifest = {"run_dir": str(run_dir), "written": [], "skipped": {}}
    out_dir = Path(out_dir)
    for task in cfg.tasks:
        prefix = STARTER_OUTPUTS[task][0]
        splits = {"dev": load_split(cfg.data_dir, task, "dev", cfg.max_bad_rows).examples}
        if TEST_FILES[task] in skipped or not (Path(test_dir) / TEST_FILES[task]).exists():
            reason = skipped.get(TEST_FILES[task], f"not in {test_dir}")
            manifest["skipped"][f"{prefix}-test-output.csv"] = f"{TEST_FILES[task]}: {reason}"
            log.warning("skipping %s-test-output.csv: %s %s", prefix, TEST_FILES[task], reason)
        else:
            splits["test"] = load_test_split(test_dir, task)
        for split, examples in splits.items():
            joint = cfg.pair_encoding == "joint"
            tokenized = tokenize_split(task, examples, tokenizer, cfg.max_length, joint)
            predictions = predict(model, tokenized, cfg, device, pad_id)
            name = f"{prefix}-{split}-output.csv"
            ids = [example.id for example in examples]
            write_text_atomic(out_dir / name, starter_csv(task, ids, predictions))
            manifest["written"].append(name)
            log.info("%s: %d predictions", name, len(predictions))
    write_text_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.train.submit", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run-dir", type=Path, required=True, help="a finished multi-task run")
    parser.add_argument("--test-dir", type=Path, required=True, help="data/cs224n-test")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        write_submission(args.run_dir, args.test_dir, args.out_dir)
    except (DataError, OSError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
