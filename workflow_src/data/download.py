"""Download and verify the CS224N data files (reading them: read.py).

Files come from one pinned commit of `gpoesia/minbert-default-final-project` and are verified
against their git blob SHA-1 (`git hash-object`), so a changed, truncated or corrupted byte is
caught before anything trains on it. Every write is atomic: a temporary file in the target
folder, then `os.replace`, so a half-written file never appears under its final name.

Command line (what `rules/data.smk` calls):
    python -m workflow_src.data.download.download fetch --dest data/cs224n --base-url URL --commit SHA \
        --files-json '{"ids-sst-train.csv": "<blob>", ...}' [--mirror DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from workflow_src.atomic import write_bytes_atomic, write_text_atomic
from workflow_src.data.read import DataError

log = logging.getLogger(__name__)

PROVENANCE_FILE = "PROVENANCE.json"
MIRROR_ENV = "MTB_DATA_MIRROR"
BASE_URL_ENV = "MTB_DATA_BASE_URL"  # config.yaml data.base_url, set by the workflow (common.smk)
# The download rules' `base_url` param, a constant: it is what every tree finished before
# recorded, and where verified files come from must rerun nothing (rules/data.smk).
RECORDED_BASE_URL = "https://raw.githubusercontent.com/gpoesia/minbert-default-final-project"
QUORA_STANDIN_TRAIN_ROWS = 14_000  # first rows of quora-dev stand in for quora-train offline


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
            "The file is corrupted, truncated or from another version."
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

    Everything is fetched and verified in a hidden staging folder beside `dest` first and moved
    in only when every file is verified, so a failure (a bad blob, the network) leaves the
    files already in `dest` as they were and no stray file behind. A file whose verified bytes
    equal those already in `dest` is left in place (its time unchanged).

    With `optional` (the test-student files), a file the mirror lacks is skipped and listed
    under `skipped` in the provenance, instead of being an error. Returns the provenance record
    also written to `dest/PROVENANCE.json`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.fetch-") as tmp:
        staging = Path(tmp)
        provenance = fetch_into(staging, files, base_url, commit, mirror, standin_rows, optional)
        for path in sorted(p for p in staging.iterdir() if p.name != PROVENANCE_FILE):
            publish(path, dest / path.name)
        write_text_atomic(dest / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")
    return provenance


def fetch_into(
    folder: Path,
    files: dict[str, str],
    base_url: str,
    commit: str,
    mirror: Path | None,
    standin_rows: int,
    optional: bool,
) -> dict:
    """Every verified file (and the Quora stand-in) into the empty `folder`; the provenance."""
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
        write_staged(folder / name, verified_bytes(data, name, blob, source))
        provenance["files"][name] = {"git_blob_sha1": blob, "bytes": len(data), "from": source}
        log.info("verified %s (%d bytes, blob %s)", name, len(data), blob[:12])

    if "quora-train.csv" in files and "quora-train.csv" not in provenance["files"]:
        note = build_quora_standin(folder, standin_rows)
        provenance.update(quora_train_standin=True, note=note)
        log.warning(note)
    return provenance


def write_staged(path: Path, data: bytes) -> None:
    """A file in the private staging folder, on disk before publish() renames it into place."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o644)


def publish(staged: Path, final: Path) -> None:
    """Move a verified file into place, or keep the one there when its bytes are the same."""
    same_size = final.is_file() and final.stat().st_size == staged.stat().st_size
    if same_size and final.read_bytes() == staged.read_bytes():
        staged.unlink()
        return
    os.replace(staged, final)


def kept_files(dest: Path, files: dict[str, str]) -> str:
    """What a failed fetch left in `dest`, for its log: nothing there is touched by a failure."""
    present = sorted(name for name in files if (Path(dest) / name).is_file())
    if not present:
        return f"Nothing was written to {dest}."
    return (
        f"{dest} is unchanged: the files verified before are kept ({', '.join(present)}); "
        "nothing of this attempt was moved in."
    )


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


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.data.download.download", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="download and verify the pinned files")
    get.add_argument("--dest", type=Path, required=True)
    get.add_argument(
        "--base-url", default="", help=f"the starter repository's raw files; env {BASE_URL_ENV}"
    )
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
    base_url = args.base_url or os.environ.get(BASE_URL_ENV, "")
    if not base_url:
        parser.error(f"no base URL: give --base-url or set {BASE_URL_ENV}")
    files = json.loads(args.files_json)
    try:
        fetch(
            args.dest,
            files,
            base_url,
            args.commit,
            mirror,
            args.standin_rows,
            args.optional,
        )
    except (DataError, OSError) as exc:
        log.error("%s", exc)
        log.error("%s", kept_files(args.dest, files))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
