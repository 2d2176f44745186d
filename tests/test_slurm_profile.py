"""The cluster profile `slurm/` asks for what the paper needs: the literal
`snakemake --cores 4 --profile slurm` plans the paper preset, and each training job's sbatch
submission requests one GPU.

The dry run shows the resources Snakemake hands the Slurm plugin but not the sbatch line (a dry
run never reaches the executor), so the submission line is checked on the real local cluster
with fake GPUs: one paper-preset training job is submitted, its `sbatch` call (the plugin's
`--verbose` log), `scontrol show job` and `sacct` ReqTRES must carry the GPU, then it is
cancelled before it trains.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
import yaml

from tests.conftest import copy_workflow, save_tiny_bert
from tests.slurm_cluster import (
    IN_CI,
    REPO_ROOT,
    local_slurm,  # noqa: F401 (fixture)
    sacct,
    snakemake_cmd,
    snakemake_env,
    submitted_jobs,
    wait_for,
)
from workflow_src.spec import cost

PROFILE = REPO_ROOT / "slurm" / "config.yaml"
GPU_OVERLAY = REPO_ROOT / "tests" / "slurm-ci-gpu" / "config.yaml"


def dry_run_jobs(output: str) -> list[dict]:
    """The `rule <name>:` blocks of a dry run, as {rule, output, resources: {key: value}}."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        out = re.search(r"^\s+output: (.+)$", block, re.M)
        res = re.search(r"^\s+resources: (.+)$", block, re.M)
        resources = dict(item.split("=", 1) for item in res.group(1).split(", ")) if res else {}
        jobs.append(
            {"rule": head.group(1), "output": out.group(1) if out else "", "resources": resources}
        )
    return jobs


def test_profile_documents_site_values_and_recovery_settings():
    """Partition, account and GPU model are placeholders marked SITE with a comment; failed jobs
    are retried and Slurm may requeue them."""
    text = PROFILE.read_text()
    for key in ("slurm_partition", "slurm_account", "gpu_model"):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
        assert "# SITE:" in line, line
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm"
    assert profile["config"] == ["preset=paper"]
    assert profile["retries"] >= 1
    assert profile["slurm-requeue"] is True
    assert "~/.config/snakemake/slurm" in text, "user-wide install documented"


def test_literal_profile_command_plans_the_paper_preset_with_one_gpu_per_training_job(tmp_path):
    """`snakemake -n --cores 4 --profile slurm` in the repository root finds ./slurm/, runs the
    paper preset (paths under results/runs/paper/) and gives every BERT training job gpu=1 with
    the profile's GPU model, and the paper's sizes, which the plugin turns into sbatch flags;
    the BiLSTM jobs ask for CPU cores only."""
    workdir = copy_workflow(tmp_path)
    proc = subprocess.run(
        snakemake_cmd("-n", "--cores", "4", "--profile", "slurm"),
        cwd=workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # ./slurm/ first, then the workflow profile profiles/default/ (it only sets local cores)
    assert "Using profiles slurm and workflow specific profile profiles/default" in output
    train = [job for job in dry_run_jobs(output) if job["rule"] == "train_cell"]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    paper = config["presets"]["paper"]
    plan = cost.job_plan({**config, "preset": "paper"})
    assert train, output[-4000:]
    assert len({job["output"] for job in train}) == len(train)
    seeds = {re.search(r"/seed(\d+)/", job["output"]).group(1) for job in train}
    assert seeds == {str(s) for s in paper["seeds"]}
    for job in train:
        assert job["output"].startswith("results/runs/paper/"), job
        res = job["resources"]
        assert res["gpu"] == "1" and res["gpu_model"] == "a100", job  # -> --gpus=a100:1
        assert res["mem_mb"] == str(paper["resources"]["mem_mb"])  # -> --mem
        cell = re.search(r"/paper/([^/]+)/seed", job["output"]).group(1)
        assert res["runtime"] == str(plan[cell]["runtime"])  # -> -t, from the cost estimate
        assert res["cpus_per_task"] == str(paper["resources"]["cpus_per_task"])
        assert res["slurm_partition"] == "gpu" and res["slurm_account"] == "myproject"
    # The BiLSTM baseline's jobs ask for no GPU (paper bilstm_resources): no --gpus at all.
    cpu = [job for job in dry_run_jobs(output) if job["rule"] == "train_cell_cpu"]
    cells = {re.search(r"/paper/([^/]+)/seed", job["output"]).group(1) for job in cpu}
    assert cells == {f"{task}-bilstm" for task in config["grid"]["tasks"]}
    for job in cpu:
        res = job["resources"]
        assert res["gpu"] == "0" and "gpu_model" not in res, job
        assert res["cpus_per_task"] == str(paper["bilstm_resources"]["cpus_per_task"])


def accounted(job_id: str) -> tuple[str, list[dict]] | None:
    """sacct's listing and rows of `job_id` once its requested TRES are recorded, else None."""
    listing, rows = sacct([job_id])
    return (listing, rows) if rows and rows[0]["ReqTRES"] else None


@pytest.mark.slurm
@pytest.mark.slow
def test_paper_training_job_is_submitted_to_slurm_with_a_gpu(local_slurm, tmp_path, capsys):  # noqa: F811
    """The real profile + paper preset, submitted to the local cluster with fake GPUs: the sbatch
    line has --gpus=a100:1, and Slurm records a GPU in the job's TRES."""
    if "gpu:a100" not in local_slurm.gres:
        reason = (
            f"the running local cluster has no fake GPUs (gres {local_slurm.gres!r}); "
            "start it with LOCAL_SLURM_GPUS=a100:2"
        )
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    real = yaml.safe_load(PROFILE.read_text())["set-resources"]["train_cell"]["gpu_model"]
    overlay = yaml.safe_load(GPU_OVERLAY.read_text())
    assert overlay["set-resources"]["train_cell"]["gpu_model"] == real
    assert "config" not in overlay, "the overlay must keep the real profile's preset"

    workdir = copy_workflow(tmp_path)
    # bert-base-uncased is fetched on the submitting node before any training job (issue 12):
    # offline, a tiny model under that name in a local hub mirror stands in for the hub.
    hub = tmp_path / "hub"
    save_tiny_bert(hub / "bert-base-uncased")
    env = {**snakemake_env(), "MTB_HUB_MIRROR": str(hub)}
    target = "results/runs/paper/sst-base/seed1/metrics.json"
    cmd = snakemake_cmd(
        "--cores", "4", "--profile", "slurm", "--profile", "tests/slurm-ci-gpu", "--verbose", target
    )
    log_path = workdir / "snakemake-gpu.out"
    job_id, sbatch_line = None, None
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while proc.poll() is None and time.monotonic() < deadline:
                text = log_path.read_text()
                jobs = submitted_jobs(text)
                if jobs:
                    job_id = jobs[0][0]
                    sbatch_line = next(line for line in text.splitlines() if "sbatch call:" in line)
                    break
                time.sleep(0.5)
            show = (
                subprocess.run(
                    ["scontrol", "show", "job", job_id], capture_output=True, text=True
                ).stdout
                if job_id
                else ""
            )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the plugin scancels the job it submitted
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if job_id:
                subprocess.run(["scancel", job_id], capture_output=True)
    assert job_id, log_path.read_text()[-4000:]
    # slurmdbd records a job cancelled while pending in two steps: first a placeholder row
    # (JobName "allocation", no ReqTRES), seconds later the real one. Wait for the real one.
    listing, rows = wait_for(lambda: accounted(job_id), timeout=60) or sacct([job_id])
    with capsys.disabled():
        print(f"\n--- paper-preset training job {job_id}: {sbatch_line.strip()}")
        print(listing, end="")

    assert jobs[0][1:] == ("train_cell", "sst-base_1")
    assert "--gpus=a100:1" in sbatch_line, sbatch_line
    assert re.search(r"TresPerJob=gres:gpu:a100:1\b", show), show
    assert "gres/gpu=1" in rows[0]["ReqTRES"], listing
