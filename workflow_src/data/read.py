"""Read the CS224N data files into typed examples.

Reading handles the real files' quirks: a leading unnamed index column, SST sentences that start
with a space, Quora fields wrapped in tripled quotes (read with the csv module, text kept as the
parser gives it), float labels, and two Quora dev rows with an empty label. A malformed row is
reported by file and line and left out; more than `max_bad_rows` of them is an error.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from workflow_src.spec.tasks import SPLIT_FILES, TASK, TASKS

log = logging.getLogger(__name__)

csv.field_size_limit(1 << 20)
# Bytes that are not UTF-8 are read as lone surrogates (errors="surrogateescape"), so that the
# row holding one is reported by its line like any malformed row, not as a decoding traceback.
NOT_UTF8 = re.compile("[\udc80-\udcff]")


class DataError(RuntimeError):
    """A data file is missing, corrupted, or has too many malformed rows."""


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
    if not math.isfinite(value):
        raise ValueError(f"{TASK[task].label_column} {raw!r} is not a finite number")
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
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file, expected a header row") from None
        except csv.Error as exc:
            raise DataError(f"{path}:1: unreadable header row ({exc})") from None
        if any(NOT_UTF8.search(name) for name in header):
            raise DataError(f"{path}:1: the header row is not UTF-8 text")
        columns = header[1:]  # the first, unnamed column is a pandas index
        line = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a field past the size limit, say: no row is left to read
                raise DataError(f"{path}:{line + 1}: unreadable row ({exc})") from None
            start, line = line + 1, reader.line_num
            yield start, *check_fields(fields, header, columns)


def check_fields(
    fields: list[str], header: list[str], columns: list[str]
) -> tuple[dict[str, str] | None, str | None]:
    """(fields by column, None) for a well-formed row, else (None, what is wrong with it)."""
    if len(fields) != len(header):
        return None, f"expected {len(header)} tab-separated fields, found {len(fields)}"
    for text in fields:
        if match := NOT_UTF8.search(text):
            byte = ord(match.group()) - 0xDC00
            return None, f"not UTF-8 text (byte 0x{byte:02x})"
    return dict(zip(columns, fields[1:], strict=True)), None


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
