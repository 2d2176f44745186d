"""Checkpoints: atomic epoch folders, newest complete one wins, loading never runs code."""

from __future__ import annotations

import pytest
import torch

from workflow_src.train import checkpoint


def state(epoch):
    return {"epoch": epoch, "step": 10 * epoch, "rng": torch.get_rng_state(), "history": "[]"}


def test_round_trip_and_epochs_before_the_previous_one_are_dropped(tmp_path):
    weights = {"a.weight": torch.randn(3, 4), "b": torch.arange(5.0)}
    checkpoint.save(tmp_path, 1, weights, state(1))
    checkpoint.save(tmp_path, 2, {k: v + 1 for k, v in weights.items()}, state(2))
    assert [e for e, _ in checkpoint.epoch_dirs(tmp_path)] == [1, 2]  # the previous is kept
    checkpoint.save(tmp_path, 3, {k: v + 2 for k, v in weights.items()}, state(3))
    assert [e for e, _ in checkpoint.epoch_dirs(tmp_path)] == [2, 3]
    epoch, tensors, st = checkpoint.load_latest(tmp_path)
    assert epoch == 3 and st["step"] == 30
    assert torch.equal(tensors["a.weight"], weights["a.weight"] + 2)
    assert not list((tmp_path / "checkpoint").glob(".*tmp"))  # no temporary leftovers


def test_nothing_to_resume_from_an_empty_run_dir(tmp_path):
    assert checkpoint.load_latest(tmp_path) is None


def test_a_half_written_checkpoint_is_ignored_and_cleaned(tmp_path):
    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, state(1))
    stale = tmp_path / "checkpoint" / ".epoch-0002.abc.tmp"  # a kill during the next write
    stale.mkdir()
    (stale / "weights.safetensors").write_bytes(b"\0" * 10)
    epoch, _, _ = checkpoint.load_latest(tmp_path)
    assert epoch == 1 and not stale.exists()


def test_an_unreadable_newest_checkpoint_falls_back_to_an_older_one(tmp_path):
    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, state(1))
    bad = tmp_path / "checkpoint" / "epoch-0002"
    bad.mkdir()
    (bad / "weights.safetensors").write_bytes(b"truncated")
    (bad / "state.pt").write_bytes(b"truncated")
    assert checkpoint.load_latest(tmp_path)[0] == 1


class Payload:
    ran = False

    def __reduce__(self):
        return (Payload._run, ())

    @staticmethod
    def _run():
        Payload.ran = True
        return "x"


def test_loading_never_executes_pickled_code(tmp_path):
    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, state(1))
    torch.save({"evil": Payload()}, tmp_path / "checkpoint" / "epoch-0001" / "state.pt")
    assert checkpoint.load_latest(tmp_path) is None  # refused by weights_only=True
    assert Payload.ran is False


def test_remove_deletes_the_folder(tmp_path):
    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, state(1))
    checkpoint.remove(tmp_path)
    assert not (tmp_path / "checkpoint").exists()


def tamper(folder, change):
    """Rewrite a checkpoint's weights with `change` applied: a valid file, other values."""
    from safetensors.torch import load_file, save_file

    path = folder / "weights.safetensors"
    save_file({k: change(v) for k, v in load_file(path).items()}, path)


def test_a_tampered_checkpoint_is_refused_naming_the_file_and_the_previous_one_is_used(
    tmp_path, caplog
):
    """Issue 26: changed tensor values loaded silently. The digest catches them; the previous
    epoch (kept for this) is where training resumes."""
    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, state(1))
    checkpoint.save(tmp_path, 2, {"w": torch.full((2,), 2.0)}, state(2))
    newest = tmp_path / "checkpoint" / "epoch-0002"
    tamper(newest, lambda v: v * 100)
    epoch, tensors, _ = checkpoint.load_latest(tmp_path)
    assert epoch == 1 and torch.equal(tensors["w"], torch.ones(2))
    assert f"{newest / 'weights.safetensors'} does not match its sha256" in caplog.text


def test_a_checkpoint_without_its_digests_is_refused(tmp_path, caplog):
    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, state(1))
    (tmp_path / "checkpoint" / "epoch-0001" / checkpoint.DIGESTS).unlink()
    assert checkpoint.load_latest(tmp_path) is None
    assert "cannot be verified" in caplog.text


def test_best_weights_are_checked_against_their_digest(tmp_path):
    model = torch.nn.Linear(2, 2)
    checkpoint.save_best(tmp_path, model, 3, "{}")
    loaded = checkpoint.load_best(tmp_path)
    assert torch.equal(loaded["weight"], model.weight.detach())
    from safetensors.torch import save_file

    save_file({k: v + 1 for k, v in loaded.items()}, tmp_path / checkpoint.BEST_WEIGHTS)
    with pytest.raises(checkpoint.CheckpointError, match=r"best\.safetensors does not match"):
        checkpoint.load_best(tmp_path)
    checkpoint.best_digest_path(tmp_path).unlink()  # weights of a run finished before digests
    assert torch.equal(checkpoint.load_best(tmp_path)["weight"], loaded["weight"] + 1)
    checkpoint.remove_best(tmp_path)
    assert list(tmp_path.iterdir()) == []
