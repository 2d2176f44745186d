"""End-of-epoch checkpoints in `<run dir>/checkpoint/`, written atomically, loaded safely.

Layout: `checkpoint/epoch-0003/` holds
    weights.safetensors   trainable parameters (frozen ones come back from the pretrained model)
                          and the SMART teacher's, prefixed `teacher.`
    state.pt              optimiser, scheduler, RNG states, epoch, step, history (torch.save;
                          read back with weights_only=True, so loading never runs code)
Each epoch folder is written under a temporary name and renamed into place, so a folder with
its final name is always complete; older epochs are removed only after the new one is in place.

With keep_best, `<run dir>/best.safetensors` holds the whole model's weights (frozen ones too,
so predictions can be regenerated without the pretrained download) of the best epoch so far,
with the epoch and the run's settings as metadata; it outlives the checkpoints.
"""

from __future__ import annotations

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


def epoch_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := EPOCH_DIR.match(p.name))]
    return sorted(found)


def save(run_dir: Path, epoch: int, tensors: dict[str, torch.Tensor], state: dict) -> Path:
    """Write epoch `epoch`'s checkpoint atomically and drop the older ones."""
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".epoch-{epoch:04d}.", suffix=".tmp"))
    try:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            tmp / "weights.safetensors",
        )
        torch.save(state, tmp / "state.pt")
        for name in ("weights.safetensors", "state.pt"):
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        final = root / f"epoch-{epoch:04d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old_epoch, path in epoch_dirs(run_dir):
        if old_epoch < epoch:
            discard(path)
    log.info("checkpoint written: %s", final)
    return final


def load_latest(run_dir: Path, device: torch.device | str = "cpu"):
    """(epoch, tensors, state) of the newest complete checkpoint, or None."""
    root = Path(run_dir) / CHECKPOINT_DIR
    for stale in [*root.glob(".epoch-*.tmp"), *Path(run_dir).glob(f".{CHECKPOINT_DIR}.*.tmp")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a kill during a write or a removal
    found = epoch_dirs(run_dir)
    for epoch, path in reversed(found):
        try:
            tensors = load_file(path / "weights.safetensors", device=str(device))
            state = torch.load(path / "state.pt", map_location=device, weights_only=True)
        except Exception as exc:  # unreadable: fall back to an older one if there is one
            log.warning("checkpoint %s unreadable (%s); trying an older one", path, exc)
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
    write_bytes_atomic(
        path, safetensors_bytes(tensors, metadata={"epoch": str(epoch), "settings": settings})
    )
    log.info("best weights (epoch %d) written: %s", epoch, path)
    return path


def remove_best(run_dir: Path) -> None:
    (Path(run_dir) / BEST_WEIGHTS).unlink(missing_ok=True)
