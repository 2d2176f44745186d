"""Fault injection: kill -9 a real training process at random points, rerun it, compare.

    python tests/fault_injection/kill_resume.py --kills 20 [--seed 0] [--data-dir DIR] [--keep DIR]

One uninterrupted run of a tiny-preset cell (`sst-epochs30`: 3 epochs, 32 examples) is the
reference. Each trial then starts the same command in a fresh run folder, waits for a point
(chosen in turn from PHASES, with a seeded random delay after it), freezes the process
(SIGSTOP) to note exactly what is on disk, kills it with SIGKILL, and reruns the same command to
the end. A trial counts as

    resumed    the rerun exits 0 and resumed after the newest complete checkpoint on disk at the
               kill (or started afresh when there was none)
    identical  its metrics.json (timings and provenance aside) and predictions.csv equal the
               reference's byte for byte / value for value
    partial    each file under a final name that is incomplete: a metrics.json or
               predictions.csv that differs from the reference, a checkpoint/epoch-N folder
               that does not load (at the kill or after the rerun); plus any file left
               in the run folder after the rerun other than metrics.json and predictions.csv

and the last line printed is `kills=N resumed=R identical=I partial_files=P`. The same
functions drive tests/test_reliability.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CELL = "sst-epochs30"  # tiny preset: 3 epochs of 2 updates, so there is something to resume
SEED = 1
POLL = 0.005  # seconds between looks at the run folder; a checkpoint write takes ~0.5 s
FINAL_FILES = ("metrics.json", "predictions.csv")


# ----------------------------------------------------------------------------- the run


def default_data_dir() -> Path:
    """The workflow's verified data if the download rule ran, else the shared mirror (SST only)."""
    local = REPO / "data" / "cs224n"
    if (local / "PROVENANCE.json").is_file():
        return local
    return Path(os.environ.get("MTB_DATA_MIRROR") or REPO.parent / "shared" / "data" / "cs224n")


def tiny_settings(data_dir: Path, cell: str = CELL) -> dict:
    """The TrainConfig dict the DAG would pass for `cell` at the tiny preset."""
    import yaml

    sys.path.insert(0, str(REPO))
    from workflow_src.spec.grid import cell_settings

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["preset"] = "tiny"
    return {**cell_settings(config, cell), "data_dir": str(data_dir)}


def command(settings: dict, run_dir: Path, seed: int = SEED) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workflow_src.train",
        "--settings-json",
        json.dumps(settings),
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
    ]


def start(settings: dict, run_dir: Path, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command(settings, run_dir),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill reaches only this run
        )


def checkpoint_names(run_dir: Path) -> set[str]:
    root = run_dir / "checkpoint"
    try:
        return {p.name for p in root.iterdir()}
    except OSError:
        return set()


def run_to_end(settings: dict, run_dir: Path, log_path: Path, timeout: float = 300) -> dict:
    """Run the command uninterrupted; return its exit code and every checkpoint name it showed."""
    proc = start(settings, run_dir, log_path)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        seen |= checkpoint_names(run_dir)
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TimeoutError(f"training did not finish in {timeout}s; log: {log_path}")
        time.sleep(POLL)
    return {"returncode": proc.returncode, "checkpoints_seen": seen}


# ----------------------------------------------------------------------------- kill points


def _has_checkpoint(epoch: int):
    return lambda run_dir, log: f"epoch-{epoch:04d}" in checkpoint_names(run_dir)


def _writing(epoch: int | None = None):
    prefix = ".epoch-" if epoch is None else f".epoch-{epoch:04d}."
    return lambda run_dir, log: any(
        n.startswith(prefix) and not n.endswith("deleting.tmp") for n in checkpoint_names(run_dir)
    )


# name -> (when the clock starts, (min, max) seconds of random delay after it); trials take
# them in turn, so 20 kills visit each at least twice
PHASES = {
    "startup": (lambda run_dir, log: True, (0.5, 4.0)),  # imports, model load, data
    "mid-epoch-1": (lambda run_dir, log: "epoch 1/" in log, (0.0, 1.0)),
    "after-checkpoint-1": (_has_checkpoint(1), (0.0, 1.0)),  # somewhere in epoch 2
    "checkpoint-write-1": (_writing(1), (0.0, 0.2)),  # the first checkpoint half written
    "after-checkpoint-2": (_has_checkpoint(2), (0.0, 1.0)),  # somewhere in epoch 3
    "checkpoint-write-2": (_writing(2), (0.0, 0.2)),
    "checkpoint-write-3": (_writing(3), (0.0, 0.2)),  # the last one: training is done
    "end": (_has_checkpoint(3), (0.0, 0.05)),  # outputs being written, checkpoints removed
}


@dataclass
class Kill:
    phase: str
    delay: float
    killed: bool = False  # False: the run ended before the kill could land
    on_disk: list[str] = field(default_factory=list)  # run folder at the kill (relative paths)

    @property
    def landed(self) -> str:
        names = set(self.on_disk)
        if "metrics.json" in names:
            return "after metrics.json"
        epochs = complete_epochs_listed(self.on_disk)
        if any(n.startswith("checkpoint/.epoch-") and "deleting" not in n for n in names):
            return f"during checkpoint write (complete: {epochs or 'none'})"
        return f"after checkpoint {epochs[-1]}" if epochs else "before the first checkpoint"


def complete_epochs_listed(paths: list[str]) -> list[int]:
    """Epochs whose final-named folder held both files at the kill."""
    epochs = []
    for n in range(1, 100):
        name = f"checkpoint/epoch-{n:04d}"
        if {f"{name}/weights.safetensors", f"{name}/state.pt"} <= set(paths):
            epochs.append(n)
    return epochs


def snapshot(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))


def kill_once(
    settings: dict,
    run_dir: Path,
    log_path: Path,
    phase: str,
    rng: random.Random,
    spec: tuple | None = None,
) -> Kill:
    """Start the command, wait for `phase` plus a random delay, freeze, note the disk, kill -9.

    `spec` (trigger, (min, max) delay) replaces PHASES[phase] for a kill point of one's own.
    """
    trigger, (low, high) = spec or PHASES[phase]
    kill = Kill(phase, rng.uniform(low, high))
    proc = start(settings, run_dir, log_path)
    fire_at = None
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if fire_at is None and trigger(run_dir, log_path.read_text(errors="replace")):
                fire_at = now + kill.delay
            if fire_at is not None and now >= fire_at:
                os.killpg(proc.pid, signal.SIGSTOP)  # frozen: what we see is what it left
                kill.on_disk = snapshot(run_dir)
                os.killpg(proc.pid, signal.SIGKILL)
                kill.killed = True
                break
            time.sleep(POLL)
    finally:
        if proc.poll() is None and not kill.killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return kill


# ----------------------------------------------------------------------------- checks


def fingerprint(metrics: dict) -> dict:
    """What must not change on resume: everything but timings, memory and the git commit."""
    keep = {k: v for k, v in metrics.items() if k not in ("compute", "provenance")}
    keep["epochs"] = [{k: v for k, v in e.items() if k != "seconds"} for e in metrics["epochs"]]
    return keep


def checkpoint_loads(folder: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    try:
        load_file(folder / "weights.safetensors")
        torch.load(folder / "state.pt", weights_only=True)
    except Exception:
        return False
    return True


def partial_files(run_dir: Path, reference: Path) -> list[str]:
    """Files under a final name in `run_dir` that are not complete."""
    bad = []
    for name in FINAL_FILES:
        path = run_dir / name
        if not path.exists():
            continue
        if name == "predictions.csv":
            if path.read_bytes() != (reference / name).read_bytes():
                bad.append(name)
            continue
        try:
            same = fingerprint(json.loads(path.read_text())) == fingerprint(
                json.loads((reference / name).read_text())
            )
        except (ValueError, KeyError, TypeError):
            same = False
        if not same:
            bad.append(name)
    root = run_dir / "checkpoint"
    if root.is_dir():
        for folder in sorted(root.glob("epoch-*")):
            if not checkpoint_loads(folder):
                bad.append(str(folder.relative_to(run_dir)))
    return bad


@dataclass
class Trial:
    kill: Kill
    returncode: int | None = None
    expected_resume: int | None = None
    resumed_from: object = "n/a"
    resumed: bool = False
    identical: bool = False
    partial: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.kill.phase:>16} +{self.kill.delay:.2f}s  landed {self.kill.landed:<45}"
            f" resumed_from={self.resumed_from} (expected {self.expected_resume})"
            f" rc={self.returncode} identical={self.identical} partial={self.partial or 0}"
        )


def trial(settings: dict, run_dir: Path, reference: Path, phase: str, rng: random.Random) -> Trial:
    """One kill and one rerun to the end, with every check of the module docstring."""
    run_dir.mkdir(parents=True)
    log_path = run_dir.with_suffix(".log")
    kill = kill_once(settings, run_dir, log_path, phase, rng)
    result = Trial(kill)
    if not kill.killed:
        return result
    result.partial = partial_files(run_dir, reference)
    complete = complete_epochs_listed(kill.on_disk)
    result.expected_resume = complete[-1] if complete else None
    result.returncode = run_to_end(settings, run_dir, log_path)["returncode"]
    if result.returncode != 0 or not (run_dir / "metrics.json").is_file():
        return result
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result.resumed_from = metrics["compute"]["resumed_from_epoch"]
    result.resumed = result.resumed_from == result.expected_resume
    result.identical = (
        fingerprint(metrics) == fingerprint(json.loads((reference / "metrics.json").read_text()))
        and (run_dir / "predictions.csv").read_bytes()
        == (reference / "predictions.csv").read_bytes()
    )
    result.partial += partial_files(run_dir, reference)
    result.partial += sorted(set(os.listdir(run_dir)) - set(FINAL_FILES))  # leftovers
    return result


def reference_run(settings: dict, run_dir: Path) -> dict:
    run_dir.mkdir(parents=True)
    done = run_to_end(settings, run_dir, run_dir.with_suffix(".log"))
    if done["returncode"] != 0:
        raise RuntimeError(f"reference run failed; log: {run_dir.with_suffix('.log')}")
    return done


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill points")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--keep", type=Path, help="work here and keep the run folders and logs")
    args = parser.parse_args(argv)

    settings = tiny_settings((args.data_dir or default_data_dir()).resolve())
    work = args.keep or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    rng = random.Random(args.seed)
    phases = list(PHASES)
    started = time.monotonic()
    reference_run(settings, work / "reference")
    trials: list[Trial] = []
    attempts = 0
    while len(trials) < args.kills and attempts < 2 * args.kills:
        attempts += 1
        phase = phases[len(trials) % len(phases)]
        result = trial(settings, work / f"trial{attempts:02d}", work / "reference", phase, rng)
        if not result.kill.killed:  # the run ended first: no kill happened, try another delay
            print(f"{phase:>16} +{result.kill.delay:.2f}s  ended before the kill", file=sys.stderr)
            continue
        trials.append(result)
        print(result.line(), file=sys.stderr, flush=True)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"({time.monotonic() - started:.0f}s, {attempts - len(trials)} missed)", file=sys.stderr)
    print(
        f"kills={len(trials)} resumed={sum(t.resumed for t in trials)}"
        f" identical={sum(t.identical for t in trials)}"
        f" partial_files={sum(len(t.partial) for t in trials)}"
    )
    ok = all(t.resumed and t.identical and not t.partial for t in trials)
    return 0 if ok and len(trials) == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
