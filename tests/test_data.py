"""Download verification and typed reading of the CS224N files (workflow_src/data/download.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from workflow_src import atomic
from workflow_src.atomic import write_bytes_atomic
from workflow_src.data import download as data
from workflow_src.data import read

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["data"]
FILES = CONFIG["files"]


def fetch_from(mirror: Path, dest: Path, files: dict = FILES) -> dict:
    return data.fetch(dest, files, CONFIG["base_url"], CONFIG["commit"], mirror=mirror)


def test_git_blob_sha1_matches_git_hash_object():
    assert data.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("ids-sst-train.csv", 8544),
        ("ids-sst-dev.csv", 1101),
        ("quora-dev.csv", 20214),
        ("sts-train.csv", 6040),
        ("sts-dev.csv", 863),
    ],
)
def test_real_files_verify_and_have_their_row_counts(shared_data, name, rows):
    raw = (shared_data / name).read_bytes()
    assert data.git_blob_sha1(raw) == FILES[name]
    task, split = next(key for key, file in read.SPLIT_FILES.items() if file == name)
    loaded = read.load_split(shared_data, task, split)
    assert len(loaded.examples) + len(loaded.bad_rows) == rows


def test_quora_dev_defects_are_reported_by_line_not_dropped_silently(shared_data):
    loaded = read.load_split(shared_data, "quora", "dev")
    assert [(row.line, row.reason) for row in loaded.bad_rows] == [
        (2577, "empty is_duplicate"),
        (14222, "empty sentence2"),
    ]
    assert len(loaded.examples) == 20212


def test_quirks_are_kept_as_the_csv_parser_gives_them(shared_data):
    sst = read.load_split(shared_data, "sst", "dev").examples
    assert sst[0].sentence.startswith(" It 's a lovely film")  # leading space kept
    assert isinstance(sst[0].label, int)
    quora = read.load_split(shared_data, "quora", "dev").examples
    # the file quotes twice over: the parser removes one layer, the rest is the text as stored
    assert quora[1].sentence1.startswith('"Which is correct grammar')
    assert quora[1].sentence1.endswith('Do I need ""the"" here?"')
    sts = read.load_split(shared_data, "sts", "dev").examples
    assert sts[1].label == pytest.approx(4.6)


def test_fetch_builds_quora_standin_and_says_so(prepared_data):
    provenance = data.read_provenance(prepared_data)
    assert provenance["quora_train_standin"] is True
    assert "stand in" in provenance["note"]
    train = read.load_split(prepared_data, "quora", "train")
    dev = read.load_split(prepared_data, "quora", "dev")
    assert len(train.examples) + len(train.bad_rows) == 14000
    assert len(dev.examples) + len(dev.bad_rows) == 6214
    assert not {e.id for e in train.examples} & {e.id for e in dev.examples}


def corrupt_mirror(shared_data: Path, tmp_path: Path, name: str, change) -> Path:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for file in shared_data.iterdir():
        shutil.copy(file, mirror / file.name)
    target = mirror / name
    target.chmod(0o644)
    target.write_bytes(change(target.read_bytes()))
    return mirror


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda raw: raw[:100] + bytes([raw[100] ^ 1]) + raw[101:], id="one-byte-change"
        ),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
    ],
)
def test_corrupted_download_fails_and_leaves_no_file(shared_data, tmp_path, change):
    mirror = corrupt_mirror(shared_data, tmp_path, "sts-dev.csv", change)
    dest = tmp_path / "out"
    with pytest.raises(data.DataError, match=r"sts-dev\.csv: .*does not match the pinned commit"):
        fetch_from(mirror, dest, {"sts-dev.csv": FILES["sts-dev.csv"]})
    assert list(dest.iterdir()) == []  # no final file, no temporary left behind


def test_missing_download_names_the_file(tmp_path):
    (tmp_path / "mirror").mkdir()
    with pytest.raises(data.DataError, match=r"sts-dev\.csv: not in the data mirror"):
        fetch_from(tmp_path / "mirror", tmp_path / "out", {"sts-dev.csv": FILES["sts-dev.csv"]})


def test_cli_reports_a_corrupted_file_and_exits_nonzero(shared_data, tmp_path, caplog):
    mirror = corrupt_mirror(shared_data, tmp_path, "ids-sst-dev.csv", lambda raw: raw + b"x")
    code = data.main(
        [
            "fetch",
            "--dest",
            str(tmp_path / "out"),
            "--base-url",
            CONFIG["base_url"],
            "--commit",
            CONFIG["commit"],
            "--files-json",
            json.dumps({"ids-sst-dev.csv": FILES["ids-sst-dev.csv"]}),
            "--mirror",
            str(mirror),
        ]
    )
    assert code == 1
    assert "ids-sst-dev.csv" in caplog.text


def test_failed_download_log_names_file_url_cause_and_the_mirror_remedy(tmp_path, monkeypatch):
    """Offline, the log says which file and URL failed, why, and how to use a local mirror
    (not only `<urlopen error ...>`)."""
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    unreachable = "http://127.0.0.1:9/gpoesia/minbert"  # discard port: connection refused
    result = subprocess.run(
        [sys.executable, "-m", "workflow_src.data.download", "fetch", "--dest", str(tmp_path / "out"),
         "--base-url", unreachable, "--commit", CONFIG["commit"],
         "--files-json", json.dumps({"sts-dev.csv": FILES["sts-dev.csv"]})],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    url = f"{unreachable}/{CONFIG['commit']}/data/sts-dev.csv"
    assert f"sts-dev.csv: download from {url} failed: " in result.stderr
    assert "refused" in result.stderr.lower()  # the cause
    assert f"{data.MIRROR_ENV}=/path/to/cs224n snakemake" in result.stderr
    assert "data: mirror:" in result.stderr
    assert not (tmp_path / "out" / "sts-dev.csv").exists()


HEADER = {"sst": "\tid\tsentence\tsentiment\n", "sts": "\tid\tsentence1\tsentence2\tsimilarity\n"}


@pytest.mark.parametrize(
    ("task", "bad_line", "reason"),
    [
        ("sst", "7\tabc\t a sentence\n", "expected 4 tab-separated fields, found 3"),
        ("sst", "7\tabc\t a sentence\tpositive\n", "could not convert string to float"),
        ("sst", "7\tabc\t a sentence\t7\n", "sentiment '7' is not an integer in 0..4"),
        ("sst", "7\tabc\t \t3\n", "empty sentence"),
        ("sts", "7\tabc\tone\ttwo\t5.5\n", "similarity '5.5' is outside 0..5"),
        ("sts", "7\tabc\tone\t\t2.0\n", "empty sentence2"),
        ("sst", "7\tabc\t a sentence\tinf\n", "sentiment 'inf' is not a finite number"),
        ("sst", "7\tabc\t a sentence\tnan\n", "sentiment 'nan' is not a finite number"),
        ("sts", "7\tabc\tone\ttwo\t-inf\n", "similarity '-inf' is not a finite number"),
    ],
)
def test_malformed_row_is_reported_with_file_and_line(tmp_path, task, bad_line, reason):
    good = "0\tx\t fine\t1\n" if task == "sst" else "0\tx\tone\ttwo\t1.0\n"
    name = read.SPLIT_FILES[task, "dev"]
    (tmp_path / name).write_text(HEADER[task] + good + bad_line + good)
    loaded = read.load_split(tmp_path, task, "dev", max_bad_rows=1)
    assert len(loaded.examples) == 2
    [bad] = loaded.bad_rows
    assert str(bad).startswith(f"{tmp_path / name}:3: ")
    assert reason in bad.reason
    with pytest.raises(
        data.DataError, match=rf"{name}: 1 malformed rows, more than max_bad_rows=0"
    ):
        read.load_split(tmp_path, task, "dev", max_bad_rows=0)


def test_missing_split_file_says_how_to_get_it(tmp_path):
    with pytest.raises(data.DataError, match="missing; run the download_data rule"):
        read.load_split(tmp_path, "sst", "train")


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new content")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_byte_that_is_not_utf8_is_a_malformed_row_named_by_file_and_line(tmp_path):
    name = read.SPLIT_FILES["sst", "dev"]
    good = b"0\tx\t fine\t1\n"
    (tmp_path / name).write_bytes(HEADER["sst"].encode() + good + b"7\tabc\t caf\xe9\t2\n" + good)
    loaded = read.load_split(tmp_path, "sst", "dev", max_bad_rows=1)
    assert [str(bad) for bad in loaded.bad_rows] == [
        f"{tmp_path / name}:3: not UTF-8 text (byte 0xe9)"
    ]
    assert len(loaded.examples) == 2


def test_an_unreadable_row_is_an_error_naming_file_and_line(tmp_path):
    """A field over the csv module's size limit (an unclosed quote swallowing the file)."""
    name = read.SPLIT_FILES["sst", "dev"]
    huge = b'7\tabc\t "' + b"a" * (2 << 20) + b"\t1\n"
    (tmp_path / name).write_bytes(HEADER["sst"].encode() + b"0\tx\t fine\t1\n" + huge)
    with pytest.raises(data.DataError, match=rf"{name}:3: unreadable row \(field larger"):
        read.load_split(tmp_path, "sst", "dev")


def verified_tree(shared_data: Path, dest: Path) -> dict[str, bytes]:
    """`dest` after a successful fetch of two files; {name: bytes} of what it holds."""
    fetch_from(
        shared_data, dest, {name: FILES[name] for name in ("sts-dev.csv", "ids-sst-dev.csv")}
    )
    return {path.name: path.read_bytes() for path in dest.iterdir()}


def test_a_failed_refetch_keeps_the_verified_files_and_leaves_nothing_stray(shared_data, tmp_path):
    dest = tmp_path / "data" / "cs224n"
    before = verified_tree(shared_data, dest)
    mirror = corrupt_mirror(shared_data, tmp_path, "sts-dev.csv", lambda raw: raw[:-10])
    with pytest.raises(data.DataError, match="does not match the pinned commit"):
        fetch_from(mirror, dest)  # every file, the Quora stand-in too, then sts-dev fails
    assert {path.name: path.read_bytes() for path in dest.iterdir()} == before
    assert sorted(path.name for path in dest.parent.iterdir()) == ["cs224n"]  # no staging left
    assert "the files verified before are kept (ids-sst-dev.csv, sts-dev.csv)" in (
        data.kept_files(dest, FILES)
    )


def test_a_failed_quora_standin_leaves_no_stray_full_file(shared_data, tmp_path):
    """The stand-in renames quora-dev.csv to quora-dev.full.csv: only inside the staging folder."""
    dest = tmp_path / "cs224n"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(shared_data / "quora-dev.csv", mirror / "quora-dev.csv")
    files = {name: FILES[name] for name in ("quora-train.csv", "quora-dev.csv")}
    with pytest.raises(data.DataError, match="the stand-in needs more than"):
        data.fetch(dest, files, CONFIG["base_url"], CONFIG["commit"], mirror, standin_rows=30000)
    assert list(dest.iterdir()) == []


def test_a_refetch_of_identical_bytes_keeps_the_files_times(shared_data, tmp_path):
    dest = tmp_path / "cs224n"
    verified_tree(shared_data, dest)
    times = {path.name: path.stat().st_mtime_ns for path in dest.glob("*.csv")}
    verified_tree(shared_data, dest)
    assert {path.name: path.stat().st_mtime_ns for path in dest.glob("*.csv")} == times


def test_cli_log_says_what_a_failed_fetch_kept(shared_data, tmp_path, caplog):
    dest = tmp_path / "cs224n"
    verified_tree(shared_data, dest)
    mirror = corrupt_mirror(shared_data, tmp_path, "sts-dev.csv", lambda raw: raw + b"x")
    code = data.main(
        ["fetch", "--dest", str(dest), "--base-url", CONFIG["base_url"],
         "--commit", CONFIG["commit"], "--files-json", json.dumps(FILES), "--mirror", str(mirror)]
    )  # fmt: skip
    assert code == 1
    assert "sts-dev.csv: content from" in caplog.text
    assert f"{dest} is unchanged: the files verified before are kept" in caplog.text
    assert "nothing was written" not in caplog.text.lower()


def test_cli_takes_the_base_url_from_the_workflow_environment(tmp_path, monkeypatch, caplog):
    """The workflow passes data.base_url as MTB_DATA_BASE_URL (rules/data.smk): the failed
    fetch's log names the URL it tried, and without either the CLI says what it needs."""
    monkeypatch.setenv(data.BASE_URL_ENV, "http://127.0.0.1:9/nowhere")
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    args = ["fetch", "--dest", str(tmp_path / "d"), "--commit", CONFIG["commit"],
            "--files-json", json.dumps({"sts-dev.csv": FILES["sts-dev.csv"]})]  # fmt: skip
    assert data.main(args) == 1
    assert "http://127.0.0.1:9/nowhere/" in caplog.text
    monkeypatch.delenv(data.BASE_URL_ENV)
    with pytest.raises(SystemExit):
        data.main(args)
