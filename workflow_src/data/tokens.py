"""The tokenizer and every task's tokenised splits as DAG outputs: computed once, read by every
training job of the preset instead of each job loading the tokenizer and tokenising again.

    python -m workflow_src.data.tokens tokenizer --encoder NAME_OR_DIR --dest DIR
    python -m workflow_src.data.tokens split --tokenizer DIR --data-dir D --task sst --max-length 64 \
        --encoding separate --max-bad-rows 10 --output results/tokens/quick/sst-separate.npz

`tokenizer` saves the encoder's tokenizer into DIR (`save_pretrained`). `split` tokenises every
row of a task's train and dev file with it (batching.tokenize_split: the very call a training
job made before) and writes one .npz: per split the example ids, labels and, per sentence view,
the token ids concatenated with their offsets; with the metadata the job checks (task,
max_length, encoding, the tokenizer's pad id and vocabulary size) and the malformed rows left
out. A job then takes its limited sample by row index, as prepare.subset does with examples, so
its batches hold exactly the tokens it computed itself before (tests/test_tokens.py).

Snakemake reruns a split when its data files or the tokenizer folder change (inputs) or the
max length or encoder change (params); `load` refuses a file made for another task, max length
or encoding, naming both values.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from workflow_src.atomic import write_bytes_atomic
from workflow_src.spec.tasks import TASK

log = logging.getLogger(__name__)

FORMAT = 1
SPLITS = ("train", "dev")


def encoding(task: str, joint: bool) -> str:
    """How a task's examples become sequences: "joint" (a pair in one sequence) only for pair
    tasks encoded jointly; a single sentence is the same either way ("separate")."""
    return "joint" if joint and TASK[task].sentences == 2 else "separate"


def save_tokenizer(encoder: str, dest: Path) -> None:
    """The encoder's tokenizer saved into `dest`, written beside it and renamed into place."""
    from workflow_src.data.encoders import load_tokenizer

    tokenizer = load_tokenizer(encoder)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tokenizer.save_pretrained(tmp)
    tmp.chmod(0o755)  # mkdtemp's folder is private; the saved tokenizer is not
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def flatten(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists -> (all ids concatenated, int32; offsets, n + 1 of them)."""
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((t for x in lists for t in x), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets


def unflatten(flat: np.ndarray, offsets: np.ndarray, rows) -> list[list[int]]:
    """The id lists of `rows` back as Python lists."""
    values = flat.tolist()
    bounds = offsets.tolist()
    return [values[bounds[i] : bounds[i + 1]] for i in rows]


def build(
    tokenizer_dir: Path, data_dir: Path, task: str, max_length: int, joint: bool, max_bad_rows: int
) -> bytes:
    """The .npz bytes of one task's tokenised train and dev splits."""
    from transformers import AutoTokenizer

    from workflow_src.data.batching import tokenize_split
    from workflow_src.data.read import load_split

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    arrays, skipped = {}, {}
    for split in SPLITS:
        loaded = load_split(data_dir, task, split, max_bad_rows)
        skipped[split] = len(loaded.bad_rows)
        tok = tokenize_split(task, loaded.examples, tokenizer, max_length, joint)
        arrays[f"{split}.ids"] = np.array(tok.ids, dtype=str)
        integer = TASK[task].output == "multiclass"
        arrays[f"{split}.labels"] = np.array(tok.labels, dtype=np.int64 if integer else np.float64)
        for view in range(tok.views):
            flat, offsets = flatten([row[view] for row in tok.tokens])
            arrays[f"{split}.tokens{view}"], arrays[f"{split}.offsets{view}"] = flat, offsets
        if tok.token_types is not None:
            flat, offsets = flatten([row[0] for row in tok.token_types])
            arrays[f"{split}.types"], arrays[f"{split}.types_offsets"] = flat, offsets
    meta = {
        "format": FORMAT,
        "task": task,
        "max_length": max_length,
        "encoding": encoding(task, joint),
        "pad_id": tokenizer.pad_token_id or 0,
        "vocab_size": len(tokenizer),
        "skipped_rows": skipped,
        "views": 1 if joint or TASK[task].sentences == 1 else 2,
    }
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class TokensMismatch(ValueError):
    """A tokens file made for other settings than the job's."""


def load(path: Path, task: str, max_length: int, joint: bool) -> tuple[dict, dict]:
    """(metadata, split -> (ids, labels, tokens, token_types) over all rows) of a tokens file
    made for exactly this task, max length and encoding."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(arrays.pop("meta").item())
    want = {
        "format": FORMAT,
        "task": task,
        "max_length": max_length,
        "encoding": encoding(task, joint),
    }
    for key, value in want.items():
        if meta.get(key) != value:
            raise TokensMismatch(
                f"{path} was made for {key}={meta.get(key)!r}, this job needs {value!r}: "
                "rerun its tokenize_split job (snakemake does when its params change)"
            )
    splits = {}
    for split in SPLITS:
        n = len(arrays[f"{split}.ids"])
        rows = range(n)
        views = [
            unflatten(arrays[f"{split}.tokens{v}"], arrays[f"{split}.offsets{v}"], rows)
            for v in range(meta["views"])
        ]
        types = None
        if f"{split}.types" in arrays:
            types = unflatten(arrays[f"{split}.types"], arrays[f"{split}.types_offsets"], rows)
        splits[split] = (
            arrays[f"{split}.ids"].tolist(),
            arrays[f"{split}.labels"].tolist(),
            list(zip(*views, strict=True)),
            [(t,) for t in types] if types is not None else None,
        )
    return meta, splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflow_src.data.tokens", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tok = commands.add_parser("tokenizer", help="save the encoder's tokenizer into a folder")
    tok.add_argument("--encoder", required=True)
    tok.add_argument("--dest", type=Path, required=True)
    split = commands.add_parser("split", help="tokenise one task's train and dev files")
    split.add_argument("--tokenizer", type=Path, required=True)
    split.add_argument("--data-dir", type=Path, required=True)
    split.add_argument("--task", choices=sorted(TASK), required=True)
    split.add_argument("--max-length", type=int, required=True)
    split.add_argument("--encoding", choices=("separate", "joint"), required=True)
    split.add_argument("--max-bad-rows", type=int, default=10)
    split.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if args.command == "tokenizer":
        save_tokenizer(args.encoder, args.dest)
        log.info("tokenizer of %s saved in %s", args.encoder, args.dest)
        return 0
    data = build(
        args.tokenizer,
        args.data_dir,
        args.task,
        args.max_length,
        args.encoding == "joint",
        args.max_bad_rows,
    )
    write_bytes_atomic(args.output, data)
    log.info("%s: %d bytes", args.output, len(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
