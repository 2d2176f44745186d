"""End-of-epoch checkpoints in `<run dir>/checkpoint/`, written atomically, loaded safely.

Layout: `checkpoint/epoch-0003/` holds
    weights.safetensors   trainable parameters (frozen ones come back from the pretrained model)
                          and the SMART teacher's, prefixed `teacher.`
    state.pt              optimiser, scheduler, RNG states, epoch, step, history (torch.save;
                          read back with weights_only=True, so loading never runs code)
    SHA256SUMS            the sha256 of both files (`sha256sum -c` reads it), written last
Each epoch folder is written under a temporary name and renamed into place, so a folder with
its final name is always complete. The newest two epochs are kept (older ones are removed only
after the new one is in place), so that a checkpoint found changed or unreadable on load is
refused, naming the file, and training resumes from the previous one.

With keep_best, `<run dir>/best.safetensors` holds the whole model's weights (frozen ones too,
so predictions can be regenerated without the pretrained download) of the best epoch so far,
with the epoch and the run's settings as metadata, and `best.safetensors.sha256` its digest
(load_best checks it; weights from before digests load with a warning); it outlives the
checkpoints.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors.torch import save as safetensors_bytes

from workflow_src.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
BEST_WEIGHTS = "best.safetensors"
EPOCH_DIR = re.compile(r"^epoch-(\d+)$")
DIGESTS = "SHA256SUMS"
FILES = ("weights.safetensors", "state.pt")
KEEP = 2  # epochs kept: the newest, and the previous one to fall back to


class CheckpointError(RuntimeError):
    """A checkpoint's files do not match their recorded digests (changed or corrupted)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_digests(folder: Path, names=FILES) -> None:
    """`folder/SHA256SUMS`: one `<sha256>  <name>` line per file, as sha256sum writes it."""
    lines = "".join(f"{sha256(folder / name)}  {name}\n" for name in names)
    write_bytes_atomic(folder / DIGESTS, lines.encode())


def verify_digests(folder: Path, names=FILES) -> None:
    """Raise CheckpointError naming the file that is missing its digest or does not match it."""
    path = folder / DIGESTS
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the checkpoint cannot be verified")
    recorded = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        recorded[name] = digest
    for name in names:
        if recorded.get(name) != sha256(folder / name):
            raise CheckpointError(
                f"{folder / name} does not match its sha256 in {path}: changed or corrupted "
                "since it was written"
            )


def epoch_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := EPOCH_DIR.match(p.name))]
    return sorted(found)


def save(run_dir: Path, epoch: int, tensors: dict[str, torch.Tensor], state: dict) -> Path:
    """Write epoch `epoch`'s checkpoint atomically; of the older ones keep the newest."""
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".epoch-{epoch:04d}.", suffix=".tmp"))
    try:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            tmp / "weights.safetensors",
        )
        torch.save(state, tmp / "state.pt")
        for name in FILES:
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        write_digests(tmp)
        final = root / f"epoch-{epoch:04d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    older = [path for old_epoch, path in epoch_dirs(run_dir) if old_epoch < epoch]
    for path in older[: max(len(older) - (KEEP - 1), 0)]:
        discard(path)
    log.info("checkpoint written: %s", final)
    return final


def load_latest(run_dir: Path, device: torch.device | str = "cpu"):
    """(epoch, tensors, state) of the newest complete checkpoint whose files match their
    digests, or None; one that does not is refused with a warning naming the file."""
    root = Path(run_dir) / CHECKPOINT_DIR
    for stale in [*root.glob(".epoch-*.tmp"), *Path(run_dir).glob(f".{CHECKPOINT_DIR}.*.tmp")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a kill during a write or a removal
    found = epoch_dirs(run_dir)
    for epoch, path in reversed(found):
        try:
            verify_digests(path)
            tensors = load_file(path / "weights.safetensors", device=str(device))
            state = torch.load(path / "state.pt", map_location=device, weights_only=True)
        except Exception as exc:  # unreadable: fall back to an older one if there is one
            log.warning(
                "checkpoint %s unreadable or changed (%s); trying the previous one", path, exc
            )
            continue
        return epoch, tensors, state
    if found:
        log.warning("no readable checkpoint in %s; training starts from scratch", root)
    return None


def discard(path: Path) -> None:
    """Delete a checkpoint folder so that it never exists half-deleted under its final name.

    It is renamed to a hidden temporary name first (atomic), then removed; a kill in between
    leaves only a `.tmp` folder that load_latest clears.
    """
    path = Path(path)
    if not path.exists():
        return
    doomed = path.with_name(f".{path.name}.{os.getpid()}.deleting.tmp")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove(run_dir: Path) -> None:
    discard(Path(run_dir) / CHECKPOINT_DIR)


def save_best(run_dir: Path, model: torch.nn.Module, epoch: int, settings: str) -> Path:
    """The model's weights as `best.safetensors`, atomically (metadata: epoch, settings)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(run_dir) / BEST_WEIGHTS
    data = safetensors_bytes(tensors, metadata={"epoch": str(epoch), "settings": settings})
    write_bytes_atomic(path, data)
    digest = f"{hashlib.sha256(data).hexdigest()}  {BEST_WEIGHTS}\n"
    write_bytes_atomic(best_digest_path(run_dir), digest.encode())
    log.info("best weights (epoch %d) written: %s", epoch, path)
    return path


def best_digest_path(run_dir: Path) -> Path:
    return Path(run_dir) / f"{BEST_WEIGHTS}.sha256"


def load_best(run_dir: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of `best.safetensors`, after checking them against their digest.

    Raises CheckpointError naming the file when the weights changed since they were written,
    FileNotFoundError when there are none. Weights written before digests were kept (no
    `.sha256` beside them) load with a warning that they cannot be verified: they belong to
    finished runs, which an update of the package must not make useless.
    """
    path = Path(run_dir) / BEST_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no best-epoch weights (keep_best was off?)")
    digest_file = best_digest_path(run_dir)
    if not digest_file.is_file():
        log.warning("%s has no digest (%s): written before digests were kept, not verified",
                    path, digest_file.name)  # fmt: skip
    elif digest_file.read_text().split()[:1] != [sha256(path)]:
        raise CheckpointError(
            f"{path} does not match its sha256 in {digest_file}: changed or corrupted since "
            "it was written; retrain the run to regenerate it"
        )
    return load_file(path, device=str(device))


def remove_best(run_dir: Path) -> None:
    (Path(run_dir) / BEST_WEIGHTS).unlink(missing_ok=True)
    best_digest_path(run_dir).unlink(missing_ok=True)
