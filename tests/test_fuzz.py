"""Seeded fuzzing of what a user hands the workflow: the config (through the schema validator)
and the CSV files (through the reader). Every case ends in a clear error, naming the config key
or the file and line, or in a correct result; never in a traceback (issue 26).

The validator and the reader are called directly, a few hundred cases each, not Snakemake per
case; the seed makes every failure reproducible (the case number is in its message).
"""

from __future__ import annotations

import copy
import math
import random
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from workflow_src.data import read
from workflow_src.spec.schema import ConfigError, validate_config
from workflow_src.spec.tasks import SPLIT_FILES

SCHEMA = REPO_ROOT / "schemas" / "config.schema.yaml"
CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
SEED = 26
CONFIG_CASES = 300
CSV_CASES = 300

STRINGS = ["", " ", "embedded", "quick", "a b", "$(touch$IFS.pwned)", "`id`", "a;b", "../..",
           "a/../../../escape_target", "-rf", "{input}", "x" * 5000, "caf\u00e9", "\x00",
           "https://example.org/x", "0" * 40, "sst", "all"]  # fmt: skip
NUMBERS = [0, 1, -1, 2**63, 0.5, -0.0, 1e-300, 1e300, math.inf, -math.inf, math.nan, 7]
OTHERS = [None, True, False, [], [1], ["sst", "sst"], {}, {"x": 1}]


def leaf_paths(node, prefix=()) -> list[tuple]:
    """Every key path of the config, to its dicts and its leaves."""
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += leaf_paths(value, (*prefix, key))
    return paths


def mutate(config: dict, rng: random.Random) -> tuple[str, tuple]:
    """Change one key of `config` in place: a new value, a removal, or an unknown key."""
    path = rng.choice(leaf_paths(config))
    *parents, last = path
    node = config
    for key in parents:
        node = node[key]
    kind = rng.choice(["value", "value", "value", "remove", "unknown"])
    if kind == "remove":
        del node[last]
    elif kind == "unknown" and isinstance(node[last], dict):
        path = (*path, "x_unknown")
        node[last]["x_unknown"] = 1
    else:
        node[last] = copy.deepcopy(rng.choice(STRINGS + NUMBERS + OTHERS))
    return kind, path


def names_the_key(message: str, path: tuple) -> bool:
    """Whether a ConfigError names the changed key or one that holds it (dotted)."""
    match = re.match(r"(?:unknown config key|config key) '([^']*)'", message)
    assert match, message
    named, changed = match.group(1), ".".join(map(str, path))
    if named == "(top level)" or changed == named:
        return True
    return changed.startswith(f"{named}.") or named.startswith(f"{changed}.")  # holds, or in it


def test_config_fuzz_ends_in_a_named_key_or_a_valid_config():
    rng = random.Random(SEED)
    outcomes = {"valid": 0, "refused": 0}
    for case in range(CONFIG_CASES):
        config = copy.deepcopy(CONFIG)
        kind, path = mutate(config, rng)
        try:
            validate_config(config, SCHEMA)
        except ConfigError as error:
            message = str(error)
            assert "\n" not in message and len(message) < 1500, (case, message)
            assert names_the_key(message, path), (case, kind, path, message)
            outcomes["refused"] += 1
        except Exception as error:  # the point: nothing else may escape
            pytest.fail(f"case {case} ({kind} {path}): {type(error).__name__}: {error}")
        else:
            outcomes["valid"] += 1
    assert outcomes["refused"] > CONFIG_CASES // 2 and outcomes["valid"] > 0, outcomes


HEADERS = {
    "sst": ["", "id", "sentence", "sentiment"],
    "quora": ["", "id", "sentence1", "sentence2", "is_duplicate"],
    "sts": ["", "id", "sentence1", "sentence2", "similarity"],
}
LABELS = ["0", "1", "4", "2.5", "5", "5.0001", "-1", "inf", "-inf", "nan", "1e400", "", "one",
          "0x1", " 3 ", "1_0"]  # fmt: skip
TEXTS = [" fine", "", "a\ttab", 'a "quoted" word', '"', '"unclosed', "x\ry", "caf\u00e9", "z"]
BYTES = [b"\xff", b"\xe9", b"\x00", b"\xc3", b"\r\n", b"\n"]


def random_row(task: str, index: int, rng: random.Random) -> bytes:
    fields = [str(index), f"id{index}"]
    fields += [rng.choice(TEXTS) for _ in HEADERS[task][2:-1]] + [rng.choice(LABELS)]
    if rng.random() < 0.1:
        fields = fields[: rng.randrange(len(fields))]
    row = "\t".join(fields).encode()
    if rng.random() < 0.15:
        at = rng.randrange(len(row) + 1)
        row = row[:at] + rng.choice(BYTES) + row[at:]
    return row + b"\n"


def check_loaded(loaded: read.LoadedSplit, task: str, path: Path, case: int) -> None:
    """A correct result: typed examples with labels in range, bad rows named by file and line."""
    for example in loaded.examples:
        assert math.isfinite(example.label), case
        if task == "sst":
            assert example.label in range(5), case
        elif task == "quora":
            assert example.label in (0.0, 1.0), case
        else:
            assert 0.0 <= example.label <= 5.0, case
    for bad in loaded.bad_rows:
        assert bad.path == str(path) and bad.line >= 2, (case, bad)


def test_csv_fuzz_ends_in_an_error_naming_file_and_line_or_typed_examples(tmp_path):
    rng = random.Random(SEED)
    outcomes = {"read": 0, "refused": 0}
    for case in range(CSV_CASES):
        task = rng.choice(list(HEADERS))
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        path = folder / SPLIT_FILES[task, "dev"]
        content = ("\t".join(HEADERS[task]) + "\n").encode()
        if rng.random() < 0.03:
            content = rng.choice([b"", b"\xff\xfe\n", b"\t\n"])
        content += b"".join(random_row(task, i, rng) for i in range(rng.randrange(0, 12)))
        path.write_bytes(content)
        try:
            loaded = read.load_split(folder, task, "dev", max_bad_rows=rng.randrange(0, 6))
        except read.DataError as error:
            assert str(error).startswith(f"{path}:") or str(error).startswith(f"{path}: "), (
                case,
                str(error),
            )
            outcomes["refused"] += 1
        except Exception as error:  # the point: nothing else may escape
            pytest.fail(f"case {case} ({task}, {content[:200]!r}): {type(error).__name__}: {error}")
        else:
            check_loaded(loaded, task, path, case)
            outcomes["read"] += 1
    assert outcomes["read"] > 0 and outcomes["refused"] > 0, outcomes
