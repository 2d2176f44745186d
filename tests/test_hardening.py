"""Issue 26 on the real workflow: nothing from a config reaches a shell, a finished tree survives
the quoting and a moved mirror, and a failed re-download keeps the verified files.

One tree trains one tiny cell with the workflow files of BEFORE (the rules as they were before
issue 26: unquoted paths, the mirror a param), then gets today's files: the user's situation
after pulling this change.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SHARED_DATA, copy_workflow, run_snakemake, scratch_tree
from workflow_src.data import download

BEFORE = "d1a6a7c"  # the layout commit (issue 22): the workflow files before issue 26
# config.yaml too: the tree trains under the config of its day (today's schema and keys came later)
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "schemas", "profiles"]
TARGET = "results/runs/tiny/sst-base/seed1/metrics.json"
TINY = ("--config", "preset=tiny")
HOSTILE = "runs$(touch$IFS.pwned)"  # the payload, as a folder name


def workflow_files_at(commit: str) -> dict[str, bytes]:
    """{path: content} of the workflow files (not the package) at `commit`."""
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit, "--", *WORKFLOW_FILES],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {
        name: subprocess.run(
            ["git", "show", f"{commit}:{name}"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
        for name in names
    }


def pwned(root: Path) -> list[Path]:
    """Files the payload would have made (`touch .pwned`, in whatever folder it ran)."""
    return list(root.rglob(".pwned"))


def remove_workflow_files(tree: Path) -> None:
    for name in WORKFLOW_FILES:
        if (tree / name).is_dir():
            shutil.rmtree(tree / name)
        else:
            (tree / name).unlink()


@pytest.fixture(scope="module")
def finished_before(tmp_path_factory) -> Path:
    """A tree that trained one tiny cell with BEFORE's workflow files, then got today's."""
    if subprocess.run(["git", "cat-file", "-e", BEFORE], cwd=REPO_ROOT).returncode != 0:
        pytest.skip(f"commit {BEFORE} is not in this clone (shallow?)")
    tree = copy_workflow(tmp_path_factory.mktemp("before"))
    remove_workflow_files(tree)
    for name, content in workflow_files_at(BEFORE).items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(content)
    result = run_snakemake(TARGET, *TINY, cwd=tree, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    remove_workflow_files(tree)  # the user pulls this change
    return copy_workflow(tree)


@pytest.mark.slow
def test_a_tree_finished_before_the_quoting_plans_no_job(finished_before):
    """Quoting changed every rule's shell text: with the profile's rerun triggers (no `code`)
    and unchanged param values, nothing is planned, training least of all."""
    result = run_snakemake("-n", TARGET, *TINY, cwd=finished_before)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


@pytest.mark.slow
def test_moving_the_data_mirror_reruns_nothing(finished_before, tmp_path):
    """`data: mirror:` (the README's alternative to MTB_DATA_MIRROR) moved to another folder
    with the same verified files: no download, no tokenising, no training."""
    moved = tmp_path / "elsewhere" / "cs224n"
    moved.parent.mkdir()
    moved.symlink_to(SHARED_DATA, target_is_directory=True)
    overlay = tmp_path / "mirror.yaml"
    overlay.write_text(f"data:\n  mirror: {moved}\nhub:\n  mirror: {tmp_path}\n")
    for env in ({}, {download.MIRROR_ENV: str(moved)}):
        result = run_snakemake(
            "-n", TARGET, "--configfile", str(overlay), *TINY, cwd=finished_before, env=env
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


@pytest.mark.slow
def test_another_base_url_for_the_data_reruns_nothing(finished_before, tmp_path):
    """`data: base_url:` is where the verified files come from, as a mirror is: a user who moves
    it to a proxy of the starter repository retrains nothing (it reached the download rule as a
    param until issue 26's follow-up, so every run downstream was planned again)."""
    overlay = tmp_path / "base_url.yaml"
    overlay.write_text("data:\n  base_url: https://example.org/proxy/minbert\n")
    result = run_snakemake("-n", TARGET, "--configfile", str(overlay), *TINY, cwd=finished_before)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


# Placeholders a shell directive may take unquoted, each already safe as it is built: quoted
# word by word in Python (shlex.quote), integers only, or a constant flag.
UNQUOTED = {
    "params.tokens": "TASK=FILE words, each shlex.quote'd by cell_tokens_args",
    "params.overlays": "--configfile words, each shlex.quote'd",
    "params.seeds": "the preset's seeds: integers (schema), joined by spaces",
    "params.pipeline_check": "the constant flag --pipeline-check, or nothing",
}


def shell_placeholders() -> dict[str, set[str]]:
    """{rule file: placeholders of its shell directives written without :q}."""
    found = {}
    for path in sorted((REPO_ROOT / "rules").glob("*.smk")):
        shells = re.findall(r"^\s+shell:\n((?:\s+[\"'].*\n)+)", path.read_text(), re.M)
        names = {m for text in shells for m in re.findall(r"\{([\w.]+)\}", text)}
        found[path.name] = names
    return found


def test_every_value_a_shell_directive_receives_is_quoted():
    """Issue 26: `{input}` was unquoted in aggregate, report and reference rules."""
    found = shell_placeholders()
    assert {"aggregate.smk", "report.smk", "reference.smk", "train.smk"} <= set(found)
    unquoted = {name for names in found.values() for name in names}
    assert unquoted <= set(UNQUOTED), unquoted - set(UNQUOTED)


def test_hostile_runs_from_is_refused_by_the_schema_and_nothing_runs(tmp_path):
    tree = copy_workflow(tmp_path / "tree")
    hostile = tmp_path / HOSTILE
    hostile.mkdir()
    result = run_snakemake("-n", "--config", f"runs_from={hostile}", cwd=tree)
    assert result.returncode != 0
    console = result.stdout + result.stderr
    assert "config key 'runs_from'" in console and "does not match" in console
    assert "Failed validating" not in console  # one line, not the whole schema
    assert not pwned(tmp_path)


@pytest.mark.slow
def test_the_real_rules_quote_a_hostile_runs_from(tmp_path):
    """Defence in depth: with the schema's pattern loosened to what it was (no whitespace),
    the aggregate and report rules run on a real folder of runs named with the issue's payload,
    read it as a plain path, and nothing is executed."""
    from tests.fake_runs import write_fake_runs

    tree = copy_workflow(tmp_path / "tree")
    schema = tree / "schemas/config.schema.yaml"
    text = schema.read_text()
    loosened = re.sub(r"(  runs_from:\n)    \$ref: \"#/\$defs/safe_path\"\n",
                      r'\1    type: string\n    pattern: "^[^\\\\s]*$"\n', text)  # fmt: skip
    assert loosened != text
    schema.write_text(loosened)
    hostile = tmp_path / HOSTILE
    write_fake_runs(hostile, "tiny", [1])
    result = run_snakemake(
        "results/tiny/summary.csv", "results/tiny/table9.tex", *TINY, f"runs_from={hostile}/tiny",
        cwd=tree, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tree / "results/tiny/summary.csv").stat().st_size > 0
    assert not pwned(tmp_path), pwned(tmp_path)


@pytest.mark.slow
def test_a_truncated_run_is_named_with_its_remedy_and_the_remedy_retrains_it_alone(
    finished_before,
):
    """Issue 26: a truncated metrics.json was taken as done (the dry run had nothing to do).
    It now stops the DAG naming the file and the remedy; following it plans that run alone."""
    metrics = finished_before / TARGET
    metrics.write_text(metrics.read_text()[:100])
    result = run_snakemake("-n", TARGET, *TINY, cwd=finished_before)
    console = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{TARGET}: unreadable (" in console
    assert f"Delete the run's folder {Path(TARGET).parent}/ and run snakemake again" in console
    shutil.rmtree(metrics.parent)  # the remedy
    result = run_snakemake("-n", TARGET, *TINY, cwd=finished_before)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout.split("Job stats:")[1], re.M))
    assert jobs == {"train_cell": "1", "total": "1"}


@pytest.mark.slow
def test_a_failed_forced_redownload_keeps_the_verified_files(finished_before, tmp_path):
    """A forced re-download from a mirror with a corrupted file fails, says why on the console
    and what it kept, and leaves every verified file as it was, with no stray file."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for source in SHARED_DATA.iterdir():
        (mirror / source.name).symlink_to(source)
    (mirror / "sts-dev.csv").unlink()
    (mirror / "sts-dev.csv").write_bytes((SHARED_DATA / "sts-dev.csv").read_bytes()[:1000])
    data = finished_before / "data/cs224n"
    before = {path.name: path.read_bytes() for path in data.iterdir()}
    result = run_snakemake(
        TARGET, *TINY, "--forcerun", "download_data",
        cwd=finished_before, env={download.MIRROR_ENV: str(mirror)}, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    console = result.stdout + result.stderr
    assert "sts-dev.csv: content from" in console and "does not match the pinned commit" in console
    assert "the files verified before are kept" in console
    assert {path.name: path.read_bytes() for path in data.iterdir()} == before
    assert not list(data.parent.glob(".cs224n.fetch-*"))


def test_snakemake_runs_in_a_scratch_copy_unless_a_test_names_a_folder():
    """Issue 26: after `snakemake --cores 2` had finished in the work tree, a test dry-running
    there found nothing left to train. Tests now run Snakemake in a copy of the tracked files,
    which holds none of a user's results, data, models or logs."""
    tree = scratch_tree()
    assert tree != REPO_ROOT and (tree / "Snakefile").is_file()
    for made_by_a_run in ("results/runs", "data", "models", "logs"):
        assert not (tree / made_by_a_run).exists(), made_by_a_run
