"""The cluster profile on a real Slurm (the local single-node cluster of ../shared/slurm/).

One Snakemake run, `--profile slurm --profile tests/slurm-ci`, in a private copy of the
repository, builds Table 2 (the three BiLSTM cells) and two 3-epoch cells. While it runs, two
faults are injected into the training jobs:
  * KILL_CELL: the training python inside its Slurm job gets SIGKILL after its first
    end-of-epoch checkpoint; the job fails, the profile's `retries` resubmits it, and the new
    job resumes from the checkpoint.
  * REQUEUE_CELL: its Slurm job gets `scontrol requeue` after the first checkpoint; Slurm
    reruns the same job id, Snakemake keeps waiting, and training resumes from the checkpoint.
The tests then read `sacct` (printed in the test output), the outputs and metrics.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import copy_workflow
from tests.slurm_cluster import (
    local_slurm,  # noqa: F401 (fixture)
    sacct,
    snakemake_cmd,
    snakemake_env,
    submitted_jobs,
    wait_for,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PRESET = "tiny"
KILL_CELL = "sst-epochs30"  # 3 epochs at the tiny preset: room to strike after the first
REQUEUE_CELL = "sts-epochs30"
TABLE = "results/table2.tex"  # the BiLSTM baseline: three cells
TABLE_CELLS = ["sst-bilstm", "quora-bilstm", "sts-bilstm"]
RUN_TIMEOUT = 540  # seconds for the whole Snakemake run (about 2-3 min on 2 idle cores)


def run_dir(workdir: Path, cell: str) -> Path:
    return workdir / "results" / "runs" / PRESET / cell / "seed1"


def metrics(workdir: Path, cell: str) -> dict:
    return json.loads((run_dir(workdir, cell) / "metrics.json").read_text())


def training_process(workdir: Path, cell: str) -> tuple[int, str] | None:
    """(pid, SLURM_JOB_ID) of the python running `workflow_src.train` for `cell` in `workdir`.

    Matched on its command line and working directory, so runs of other test sessions (same
    relative run dir, other folder) are never touched."""
    wanted = f"results/runs/{PRESET}/{cell}/seed1"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if len(argv) < 3 or not Path(argv[0].decode()).name.startswith("python"):
                continue
            if argv[1:3] != [b"-m", b"workflow_src.train"] or wanted.encode() not in argv:
                continue
            if Path(os.readlink(proc / "cwd")).resolve() != workdir.resolve():
                continue
            env = dict(
                item.split(b"=", 1)
                for item in (proc / "environ").read_bytes().split(b"\0")
                if b"=" in item
            )
        except (OSError, ValueError):
            continue
        return int(proc.name), env.get(b"SLURM_JOB_ID", b"").decode()
    return None


def checkpointed_epochs(workdir: Path, cell: str) -> list[int]:
    """Epochs with a complete checkpoint (`checkpoint/epoch-NNNN/`, renamed into place)."""
    root = run_dir(workdir, cell) / "checkpoint"
    return sorted(int(p.name[6:]) for p in root.glob("epoch-*")) if root.is_dir() else []


@dataclass
class Fault:
    cell: str
    done: bool = False
    slurm_job: str = ""
    after_epoch: int = 0
    note: list[str] = field(default_factory=list)


@dataclass
class SlurmRun:
    workdir: Path
    returncode: int
    output: str
    seconds: float
    kill: Fault
    requeue: Fault
    jobs: list[tuple[str, str, str]]  # (slurm job id, rule, wildcards)


def _strike(workdir: Path, fault: Fault, action) -> None:
    """Run `action(pid, slurm_job)` once the cell has a checkpoint and its training runs."""
    if fault.done:
        return
    epochs = checkpointed_epochs(workdir, fault.cell)
    found = training_process(workdir, fault.cell) if epochs else None
    if found:
        pid, slurm_job = found
        fault.slurm_job, fault.after_epoch = slurm_job, epochs[-1]
        action(pid, slurm_job)
        fault.done = True


def _kill(fault: Fault):
    def action(pid: int, slurm_job: str) -> None:
        os.kill(pid, signal.SIGKILL)
        fault.note.append(f"kill -9 {pid} (Slurm job {slurm_job})")

    return action


def _requeue(fault: Fault):
    def action(pid: int, slurm_job: str) -> None:
        subprocess.run(["scontrol", "requeue", slurm_job], check=True, timeout=30)
        fault.note.append(f"scontrol requeue {slurm_job} (training pid {pid})")

        # Slurm holds a requeued job for ~2 min (Reason=BeginTime) before it may start again;
        # release it at once so the test stays short. This changes when, not how, it reruns.
        def released() -> bool:
            state = subprocess.run(
                ["squeue", "-h", "-j", slurm_job, "-o", "%T"], capture_output=True, text=True
            ).stdout.strip()
            if state != "PENDING":
                return state in {"RUNNING", "COMPLETED"}
            return (
                subprocess.run(
                    ["scontrol", "update", f"jobid={slurm_job}", "StartTime=now"],
                    capture_output=True,
                ).returncode
                == 0
            )

        if wait_for(released, timeout=60, interval=0.5):
            fault.note.append(f"released {slurm_job} from its requeue hold")

    return action


@pytest.fixture(scope="module")
def slurm_run(local_slurm, tmp_path_factory) -> SlurmRun:  # noqa: F811 (fixture)
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-run"))
    targets = [TABLE] + [
        f"results/runs/{PRESET}/{cell}/seed1/metrics.json" for cell in (KILL_CELL, REQUEUE_CELL)
    ]
    cmd = snakemake_cmd(
        "--cores", "4", "--profile", "slurm", "--profile", "tests/slurm-ci", *targets
    )
    log_path = workdir / "snakemake-slurm.out"
    kill, requeue = Fault(KILL_CELL), Fault(REQUEUE_CELL)
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=snakemake_env(), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            while proc.poll() is None:
                if time.monotonic() - started > RUN_TIMEOUT:
                    proc.send_signal(signal.SIGINT)  # the plugin scancels its jobs
                    proc.wait(timeout=60)
                    break
                _strike(workdir, kill, _kill(kill))
                _strike(workdir, requeue, _requeue(requeue))
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log_path.read_text()
    return SlurmRun(
        workdir=workdir,
        returncode=proc.returncode,
        output=output,
        seconds=time.monotonic() - started,
        kill=kill,
        requeue=requeue,
        jobs=submitted_jobs(output),
    )


def train_jobs(run: SlurmRun, cell: str) -> list[str]:
    return [
        job
        for job, rule, wildcards in run.jobs
        if rule == "train_cell" and wildcards == f"{cell}_1"
    ]


def test_dag_runs_as_slurm_jobs_that_complete(slurm_run, capsys):
    """Every training job went through sbatch; sacct (printed) ends each one COMPLETED; the
    table and every run's metrics.json exist and name the Slurm job that wrote them."""
    run = slurm_run
    assert run.returncode == 0, run.output[-6000:]
    cells = [*TABLE_CELLS, KILL_CELL, REQUEUE_CELL]
    ids = [job for job, rule, _ in run.jobs if rule == "train_cell"]
    listing, rows = sacct(ids)
    with capsys.disabled():
        print(f"\n--- sacct of the {len(ids)} train_cell submissions ({run.seconds:.0f} s run) ---")
        print(listing, end="")
        print(f"--- faults: {run.kill.note + run.requeue.note}")
    (run.workdir / "results" / "sacct.txt").write_text(listing)

    assert {rule for _, rule, _ in run.jobs} == {"train_cell"}, "only training goes to Slurm"
    last_state = {row["JobID"]: row["State"] for row in rows}  # --duplicates: last row wins
    assert set(last_state) == set(ids), f"sacct lacks jobs: {listing}"
    for cell in cells:
        jobs = train_jobs(run, cell)
        assert jobs, f"{cell}: never submitted"
        assert last_state[jobs[-1]] == "COMPLETED", listing
        m = metrics(run.workdir, cell)
        assert m["run"]["cell"] == cell
        assert m["compute"]["slurm_job_id"] == jobs[-1], "metrics.json written inside its Slurm job"
        assert (run_dir(run.workdir, cell) / "predictions.csv").is_file()
        assert not (run_dir(run.workdir, cell) / "checkpoint").exists(), "checkpoints removed"
    table = (run.workdir / TABLE).read_text()
    assert "\\begin{tabular}" in table or "\\begin{table" in table


def test_a_job_killed_once_is_retried_and_resumes(slurm_run):
    """SIGKILL to the training python inside its Slurm job: that job FAILED, Snakemake's retry
    submitted a new one which COMPLETED, and training resumed from the checkpoint."""
    run = slurm_run
    assert run.kill.done, f"no training process of {KILL_CELL} to kill after a checkpoint"
    assert run.returncode == 0, run.output[-6000:]
    jobs = train_jobs(run, KILL_CELL)
    assert len(jobs) == 2, f"expected the failed job and one retry, got {jobs}"
    assert jobs[0] == run.kill.slurm_job
    _, rows = sacct(jobs)
    states = [(row["JobID"], row["State"]) for row in rows]
    assert states == [(jobs[0], "FAILED"), (jobs[1], "COMPLETED")], states
    compute = metrics(run.workdir, KILL_CELL)["compute"]
    assert compute["resumed_from_epoch"] is not None
    assert compute["resumed_from_epoch"] >= run.kill.after_epoch >= 1
    assert len(metrics(run.workdir, KILL_CELL)["epochs"]) == 3, "every epoch in the history"


def test_a_requeued_job_resumes_from_its_checkpoint(slurm_run):
    """`scontrol requeue` while training: Slurm reran the same job id (REQUEUED, then
    COMPLETED), Snakemake submitted nothing new, and training resumed from the checkpoint."""
    run = slurm_run
    assert run.requeue.done, f"no training process of {REQUEUE_CELL} to requeue after a checkpoint"
    assert run.returncode == 0, run.output[-6000:]
    jobs = train_jobs(run, REQUEUE_CELL)
    assert jobs == [run.requeue.slurm_job], f"requeue is Slurm's, not a resubmission: {jobs}"
    _, rows = sacct(jobs)
    assert [row["State"] for row in rows] == ["REQUEUED", "COMPLETED"], rows
    compute = metrics(run.workdir, REQUEUE_CELL)["compute"]
    assert compute["slurm_job_id"] == run.requeue.slurm_job
    assert compute["resumed_from_epoch"] is not None
    assert compute["resumed_from_epoch"] >= run.requeue.after_epoch >= 1
