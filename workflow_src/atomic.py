"""Atomic file writes: a temporary file beside the target, flushed, then renamed over it.

    python -m workflow_src.atomic copy SOURCE DEST      (a copy written the same way)

A reader (or Snakemake) sees either the old content or the whole new one, never a part: a
killed job leaves at most a hidden `.<name>.*.tmp`, not a truncated file under the real name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not outrun the data after a crash
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def copy_atomic(source: str | Path, dest: str | Path) -> None:
    """`dest` becomes a byte-for-byte copy of `source`, atomically."""
    write_bytes_atomic(dest, Path(source).read_bytes())


def main(argv: list[str] | None = None) -> int:
    """`python -m workflow_src.atomic copy SOURCE DEST` (what rules/report.smk's copy_table calls)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m workflow_src.atomic")
    sub = parser.add_subparsers(dest="command", required=True)
    copy = sub.add_parser("copy", help="copy SOURCE to DEST through a temporary file")
    copy.add_argument("source", type=Path)
    copy.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    copy_atomic(args.source, args.dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
