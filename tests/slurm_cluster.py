"""The local single-node Slurm cluster the Slurm tests run on, and helpers to drive it.

`local_slurm` (session scope) makes `sbatch` work: it uses a cluster that already answers, or
starts one with `../shared/slurm/start-local-slurm.sh` (found relative to the repository root)
and stops the one it started at the end of the session. It skips only outside CI, when no
cluster answers and none can be started; under `CI=true` that is a failure instead.
A lock file keeps two pytest sessions on one machine from stopping the cluster under each other.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SLURM = REPO_ROOT.parent / "shared" / "slurm"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "cs224n"
CLUSTER_DIR = Path(os.environ.get("LOCAL_SLURM_DIR", "/tmp/local-slurm"))
# Fake GPUs (GRES backed by empty files) so that a real `--gpus=a100:1` request gets scheduled;
# jobs without a GPU request run on the same node as usual.
FAKE_GPUS = "a100:2"
LOCK_FILE = Path("/tmp/local-slurm-tests.lock")
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@dataclass
class Cluster:
    started_here: bool
    gres: str  # what `sinfo -o %G` reports for the node, e.g. "gpu:a100:2" or "(null)"


_state: dict = {"users": 0, "cluster": None, "lock": None}


def _answers() -> bool:
    """True when a Slurm controller answers and the node is up."""
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return False
    return any(state.strip() in {"idle", "mixed", "allocated"} for state in out.split())


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but the local Slurm cluster is not available: {reason}")
    pytest.skip(f"sbatch not available and the local Slurm cluster cannot be started: {reason}")


def _start() -> Cluster:
    if _answers():
        started_here = False
    else:
        script = SHARED_SLURM / "start-local-slurm.sh"
        if not script.is_file():
            _unavailable(f"{script} not found")
        if os.geteuid() != 0:
            _unavailable(f"{script} needs root (apt-get, daemons)")
        env = {**os.environ, "LOCAL_SLURM_GPUS": os.environ.get("LOCAL_SLURM_GPUS", FAKE_GPUS)}
        proc = subprocess.run(
            ["bash", str(script), str(CLUSTER_DIR)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        if proc.returncode != 0 or not _answers():
            _unavailable(
                f"{script.name} exited {proc.returncode}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
            )
        started_here = True
    gres = subprocess.run(
        ["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=20
    ).stdout.strip()
    return Cluster(started_here=started_here, gres=gres)


def _stop(cluster: Cluster) -> None:
    if cluster.started_here:
        subprocess.run(
            ["bash", str(SHARED_SLURM / "stop-local-slurm.sh"), str(CLUSTER_DIR)],
            capture_output=True,
            timeout=300,
        )


@pytest.fixture(scope="session")
def local_slurm():
    """A running local Slurm cluster (with accounting, so `sacct` works) for the whole session.

    Imported into several test modules; the reference count makes the cluster start once and
    stop once, after the last of them.
    """
    if _state["users"] == 0:
        lock = open(LOCK_FILE, "w")  # noqa: SIM115 (held across the whole session)
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another session uses the cluster
        _state["lock"] = lock
        try:
            _state["cluster"] = _start()
        except BaseException:
            lock.close()
            _state["lock"] = None
            raise
    _state["users"] += 1
    try:
        yield _state["cluster"]
    finally:
        _state["users"] -= 1
        if _state["users"] == 0:
            try:
                _stop(_state["cluster"])
            finally:
                _state["lock"].close()
                _state["lock"] = None


# ---- a private copy of the repository for a run, and running Snakemake in it


def snakemake_env() -> dict:
    """The environment of a test's Snakemake: the venv first on PATH (rules call `python`),
    the data mirror (the download rule copies from it). sbatch passes it on (--export=ALL)."""
    env = dict(os.environ)
    env.setdefault("MTB_DATA_MIRROR", str(SHARED_DATA))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def snakemake_cmd(*args: str) -> list[str]:
    snakemake = BIN / "snakemake"
    return [str(snakemake) if snakemake.exists() else "snakemake", *args]


SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def submitted_jobs(output: str) -> list[tuple[str, str, str]]:
    """(slurm job id, rule, '<wildcards>') of every sbatch submission Snakemake reported.

    The plugin logs each submission with its log file
    `.snakemake/slurm_logs/rule_<rule>/<wildcards joined by _>/<jobid>.log`."""
    jobs = []
    for job_id, log in SUBMITTED.findall(output):
        path = Path(log)
        jobs.append((job_id, path.parent.parent.name.removeprefix("rule_"), path.parent.name))
    return jobs


SACCT_FORMAT = "JobID,JobName%36,State,ExitCode,Start,End,Elapsed,ReqTRES%45"


def sacct(job_ids, duplicates: bool = True) -> tuple[str, list[dict]]:
    """sacct's listing of `job_ids` (with --duplicates: every requeued instance too), as text
    and as rows."""
    ids = ",".join(sorted(set(job_ids), key=int))
    base = ["sacct", "-X", "-j", ids] + (["--duplicates"] if duplicates else [])
    text = subprocess.run(
        [*base, "-o", SACCT_FORMAT], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    raw = subprocess.run(
        [
            *base,
            "--parsable2",
            "--noheader",
            "-o",
            SACCT_FORMAT.replace("%36", "").replace("%45", ""),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    keys = [k.split("%")[0] for k in SACCT_FORMAT.split(",")]
    rows = [dict(zip(keys, line.split("|"), strict=True)) for line in raw.splitlines() if line]
    return text, rows


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass
    (returns None)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
