"""Download, verify and read the CS224N data files.

Files come from one pinned commit of `gpoesia/minbert-default-final-project` and are verified
against their git blob SHA-1 (`git hash-object`), so a changed, truncated or corrupted byte is
caught before anything trains on it. Every write is atomic: a temporary file in the target
folder, then `os.replace`, so a half-written file never appears under its final name.

Reading handles the real files' quirks: a leading unnamed index column, SST sentences that start
with a space, Quora fields wrapped in tripled quotes (read with the csv module, text kept as the
parser gives it), float labels, and two Quora dev rows with an empty label. A malformed row is
reported by file and line and left out; more than `max_bad_rows` of them is an error.

Command line (what `rules/data.smk` calls):
    python -m workflow_src.data fetch --dest data/cs224n --base-url URL --commit SHA \
        --files-json '{"ids-sst-train.csv": "<blob>", ...}' [--mirror DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_bytes_atomic, write_text_atomic
from .tasks import SPLIT_FILES, TASK, TASKS

log = logging.getLogger(__name__)

PROVENANCE_FILE = "PROVENANCE.json"
MIRROR_ENV = "MTB_DATA_MIRROR"
QUORA_STANDIN_TRAIN_ROWS = 14_000  # first rows of quora-dev stand in for quora-train offline
csv.field_size_limit(1 << 20)


class DataError(RuntimeError):
    """A data file is missing, corrupted, or has too many malformed rows."""


# ----------------------------------------------------------------------------- verification


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content: sha1(b"blob <len>\\0" + data)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def verified_bytes(data: bytes, name: str, expected_blob: str, source: str) -> bytes:
    actual = git_blob_sha1(data)
    if actual != expected_blob:
        raise DataError(
            f"{name}: content from {source} does not match the pinned commit "
            f"(git blob {actual}, expected {expected_blob}; {len(data)} bytes). "
            "The file is corrupted, truncated or from another version; nothing was written."
        )
    return data


def read_source(name: str, base_url: str, commit: str, mirror: Path | None) -> tuple[bytes, str]:
    """Bytes of one file from the mirror folder, or from the pinned commit over HTTPS."""
    if mirror is not None:
        path = mirror / name
        return path.read_bytes(), str(path)
    url = f"{base_url.rstrip('/')}/{commit}/data/{name}"
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read(), url
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise DataError(download_failure(name, url, exc)) from exc


def download_failure(name: str, url: str, exc: BaseException) -> str:
    """What failed, why, and how to run without the network (the whole message a user sees)."""
    cause = getattr(exc, "reason", None) or exc
    if isinstance(exc, urllib.error.HTTPError):
        cause = f"HTTP {exc.code} {exc.reason}"
    return (
        f"{name}: download from {url} failed: {cause}.\n"
        "Without internet, point the workflow at a local folder holding the same files "
        f"(a clone of the starter repository's data/ folder): `{MIRROR_ENV}=/path/to/cs224n "
        "snakemake --cores 2`, or set `data: mirror: /path/to/cs224n` in config.yaml. Every "
        "file is still verified against its pinned git blob id."
    )


def fetch(
    dest: Path,
    files: dict[str, str],
    base_url: str,
    commit: str,
    mirror: Path | None = None,
    standin_rows: int = QUORA_STANDIN_TRAIN_ROWS,
    optional: bool = False,
) -> dict:
    """Download and verify every file into `dest`; build the Quora stand-in where needed.

    With `optional` (the test-student files), a file the mirror lacks is skipped and listed
    under `skipped` in the provenance, instead of being an error. Returns the provenance record
    also written to `dest/PROVENANCE.json`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    provenance: dict = {
        "commit": commit,
        "source": str(mirror) if mirror else base_url,
        "files": {},
        "quora_train_standin": False,
        "note": "",
        "skipped": {},
    }
    for name, blob in files.items():
        if mirror is not None and not (mirror / name).exists():
            if name == "quora-train.csv":
                continue  # handled below with a stand-in
            if optional:
                provenance["skipped"][name] = f"not in the data mirror {mirror}"
                log.warning("skipping %s: not in the data mirror %s", name, mirror)
                continue
            raise DataError(f"{name}: not in the data mirror {mirror}")
        data, source = read_source(name, base_url, commit, mirror)
        write_bytes_atomic(dest / name, verified_bytes(data, name, blob, source))
        provenance["files"][name] = {"git_blob_sha1": blob, "bytes": len(data), "from": source}
        log.info("verified %s (%d bytes, blob %s)", name, len(data), blob[:12])

    if "quora-train.csv" in files and "quora-train.csv" not in provenance["files"]:
        note = build_quora_standin(dest, standin_rows)
        provenance.update(quora_train_standin=True, note=note)
        log.warning(note)
    write_text_atomic(dest / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")
    return provenance


def build_quora_standin(dest: Path, train_rows: int) -> str:
    """Split the verified quora-dev into a stand-in train part and a smaller dev part.

    The original dev file is kept as `quora-dev.full.csv`; the split is by physical line, so it
    is the same on every machine.
    """
    full = dest / "quora-dev.full.csv"
    os.replace(dest / "quora-dev.csv", full)  # just written and verified by fetch()
    header, *rows = full.read_bytes().removesuffix(b"\n").split(b"\n")  # physical lines only
    if len(rows) <= train_rows:
        raise DataError(
            f"quora-dev.csv has {len(rows)} rows; the stand-in needs more than {train_rows}"
        )
    for name, part in (
        ("quora-train.csv", rows[:train_rows]),
        ("quora-dev.csv", rows[train_rows:]),
    ):
        write_bytes_atomic(dest / name, b"\n".join([header, *part]) + b"\n")
    return (
        f"quora-train.csv was not available: the first {train_rows} rows of the verified "
        f"quora-dev.csv stand in for it and the remaining {len(rows) - train_rows} rows serve "
        "as quora dev. Quora numbers are not comparable to the paper's."
    )


def read_provenance(data_dir: str | Path) -> dict:
    path = Path(data_dir) / PROVENANCE_FILE
    if not path.exists():
        return {"quora_train_standin": False, "note": f"no {PROVENANCE_FILE} in {data_dir}"}
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class SentenceExample:
    id: str
    sentence: str
    label: int  # SST: 0 (negative) .. 4 (positive)


@dataclass(frozen=True)
class PairExample:
    id: str
    sentence1: str
    sentence2: str
    label: float  # Quora: 0.0 / 1.0; STS: similarity 0..5


@dataclass(frozen=True)
class BadRow:
    path: str
    line: int  # physical line, header = 1
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class LoadedSplit:
    task: str
    split: str
    examples: list = field(repr=False)
    bad_rows: list[BadRow] = field(default_factory=list)


def parse_label(task: str, raw: str) -> int | float:
    """The label of one row, or ValueError saying why it is not one."""
    if raw is None or raw.strip() == "":
        raise ValueError(f"empty {TASK[task].label_column}")
    value = float(raw)
    if task == "sst":
        if value != int(value) or not 0 <= value <= 4:
            raise ValueError(f"sentiment {raw!r} is not an integer in 0..4")
        return int(value)
    if task == "quora":
        if value not in (0.0, 1.0):
            raise ValueError(f"is_duplicate {raw!r} is not 0 or 1")
        return value
    if not 0.0 <= value <= 5.0:
        raise ValueError(f"similarity {raw!r} is outside 0..5")
    return value


def iter_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(line number, fields by column, error) for each data row of a tab-separated file."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file, expected a header row") from None
        columns = header[1:]  # the first, unnamed column is a pandas index
        line = reader.line_num
        for fields in reader:
            start, line = line + 1, reader.line_num
            if len(fields) != len(header):
                yield (
                    start,
                    None,
                    f"expected {len(header)} tab-separated fields, found {len(fields)}",
                )
                continue
            yield start, dict(zip(columns, fields[1:], strict=True)), None


def load_split(data_dir: str | Path, task: str, split: str, max_bad_rows: int = 10) -> LoadedSplit:
    """Typed examples of one task's split; malformed rows are reported, counted and left out."""
    if (task, split) not in SPLIT_FILES:
        raise ValueError(f"unknown task/split {task}/{split}; tasks are {TASKS}, splits train/dev")
    path = Path(data_dir) / SPLIT_FILES[task, split]
    if not path.exists():
        raise DataError(f"{path}: missing; run the download_data rule first")
    examples, bad = [], []
    for line, row, error in iter_rows(path):
        if error is None:
            try:
                examples.append(make_example(task, row))
            except (ValueError, KeyError) as exc:
                error = str(exc)
        if error is not None:
            bad.append(BadRow(str(path), line, error))
            log.warning("skipping %s", bad[-1])
    if len(bad) > max_bad_rows:
        listing = "\n  ".join(map(str, bad[:20]))
        raise DataError(
            f"{path}: {len(bad)} malformed rows, more than max_bad_rows={max_bad_rows}:\n  {listing}"
        )
    return LoadedSplit(task, split, examples, bad)


def make_example(task: str, row: dict[str, str]) -> SentenceExample | PairExample:
    spec = TASK[task]
    texts = [row[column] for column in spec.text_columns]
    for column, text in zip(spec.text_columns, texts, strict=True):
        if not text.strip():
            raise ValueError(f"empty {column}")
    if not row["id"].strip():
        raise ValueError("empty id")
    label = parse_label(task, row[spec.label_column])
    if spec.sentences == 1:
        return SentenceExample(row["id"], texts[0], label)
    return PairExample(row["id"], texts[0], texts[1], label)


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.data", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="download and verify the pinned files")
    get.add_argument("--dest", type=Path, required=True)
    get.add_argument("--base-url", required=True)
    get.add_argument("--commit", required=True)
    get.add_argument("--files-json", required=True, help='{"file name": "git blob sha1", ...}')
    get.add_argument(
        "--mirror",
        default="",
        help=f"local folder instead of the network; env {MIRROR_ENV} also works",
    )
    get.add_argument("--standin-rows", type=int, default=QUORA_STANDIN_TRAIN_ROWS)
    get.add_argument(
        "--optional",
        action="store_true",
        help="files the mirror lacks are skipped and listed in PROVENANCE.json (test files)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    mirror_arg = args.mirror or os.environ.get(MIRROR_ENV, "")
    mirror = Path(mirror_arg).resolve() if mirror_arg else None
    if mirror is not None and not mirror.is_dir():
        parser.error(f"data mirror {mirror} is not a folder")
    try:
        fetch(
            args.dest,
            json.loads(args.files_json),
            args.base_url,
            args.commit,
            mirror,
            args.standin_rows,
            args.optional,
        )
    except (DataError, OSError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
