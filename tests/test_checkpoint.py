"""Checkpoints: atomic epoch folders, newest complete one wins, loading never runs code."""

from __future__ import annotations

import torch

from workflow_src.train import checkpoint


def state(epoch):
    return {"epoch": epoch, "step": 10 * epoch, "rng": torch.get_rng_state(), "history": "[]"}


def test_round_trip_and_older_epochs_are_dropped(tmp_path):
    weights = {"a.weight": torch.randn(3, 4), "b": torch.arange(5.0)}
    checkpoint.save(tmp_path, 1, weights, state(1))
    checkpoint.save(tmp_path, 2, {k: v + 1 for k, v in weights.items()}, state(2))
    assert [e for e, _ in checkpoint.epoch_dirs(tmp_path)] == [2]
    epoch, tensors, st = checkpoint.load_latest(tmp_path)
    assert epoch == 2 and st["step"] == 20
    assert torch.equal(tensors["a.weight"], weights["a.weight"] + 1)
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
