"""Every command in the README's tables works exactly as typed (issue 12, item 0).

The commands are read from README.md itself, so a command added there is tested here without
editing this file. They run in a copy of the workflow with the offline data mirror set.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake
from tests.fake_runs import write_fake_runs

README = REPO_ROOT / "README.md"
TABLE_COMMAND = re.compile(r"^\|\s*`(snakemake(?: [^`]*)?)`\s*\|", re.MULTILINE)


def readme_commands() -> list[str]:
    """The commands in the first column of the README's tables, in README order."""
    return TABLE_COMMAND.findall(README.read_text(encoding="utf-8"))


def on_cluster(command: str) -> bool:
    """Commands for a Slurm cluster: this suite has none (tests/test_slurm.py starts one)."""
    return "--profile slurm" in command


def needs_weights(command: str) -> bool:
    """Commands that read trained weights, which the fake runs below do not have
    (tests/test_submit.py runs the submission command on a real run)."""
    return "submission" in command


def config() -> dict:
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


def test_readme_tables_list_the_promised_commands():
    commands = readme_commands()
    assert {"snakemake report", "snakemake results/table9.tex"} <= set(commands)
    assert "snakemake --cores 4 --profile slurm" in commands
    assert len(commands) == len(set(commands))


def test_workflow_profile_names_no_key_a_cluster_profile_sets():
    """profiles/default/ is read after `--profile slurm` and replaces every top-level key it
    names: naming one the Slurm profiles set (resources, executor, config) would drop the
    site's partition, account or GPU model."""
    workflow_profile = yaml.safe_load((REPO_ROOT / "profiles/default/config.yaml").read_text())
    # cores: what makes `snakemake report` run as typed; rerun-triggers: no command-text
    # trigger; show-failed-logs: a failed job's cause on the console (issue 26)
    assert workflow_profile == {
        "cores": 2,
        "rerun-triggers": ["mtime", "params", "input"],
        "show-failed-logs": True,
    }
    for cluster_profile in ("slurm", "tests/slurm-ci", "tests/slurm-ci-gpu"):
        keys = yaml.safe_load((REPO_ROOT / cluster_profile / "config.yaml").read_text())
        assert not set(workflow_profile) & set(keys), cluster_profile


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("fresh"))


@pytest.mark.parametrize("command", [c for c in readme_commands() if "--report" not in c])
def test_readme_command_plans_as_typed_on_a_fresh_clone(fresh_clone, command):
    """A dry run of the command exactly as typed (training is what a real run would do here);
    Snakemake's own report (`--report`) needs a finished tree: see the test below."""
    result = run_snakemake(*shlex.split(command)[1:], "-n", cwd=fresh_clone, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "workflow specific profile profiles/default" in output


@pytest.fixture(scope="module")
def finished_tree(tmp_path_factory, shared_data) -> Path:
    """A workflow copy after the README's first command, with fake runs standing in for
    training at every preset (so rendering runs for real and nothing trains)."""
    tree = copy_workflow(tmp_path_factory.mktemp("finished"))
    result = run_snakemake("--cores", "1", "data/cs224n/PROVENANCE.json", cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    presets = config()["presets"]
    for preset in presets:
        write_fake_runs(tree / "results" / "runs", preset, presets[preset]["seeds"])
    result = run_snakemake("--cores", "2", cwd=tree, timeout=900)  # the README's first command
    assert result.returncode == 0, result.stderr[-3000:]
    return tree


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_as_typed_on_a_finished_tree(finished_tree, command):
    """Run verbatim (cluster commands as a dry run): no error, nothing left to train."""
    dry = on_cluster(command) or needs_weights(command)
    args = shlex.split(command)[1:] + (["-n"] if dry else [])
    result = run_snakemake(*args, cwd=finished_tree, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "cores have to be specified" not in output
    assert not re.search(r"^\s*(?:local)?rule train_cell:", output, re.MULTILINE), output[-3000:]


def test_package_has_a_licence_and_a_citation_naming_the_reproduced_paper():
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")
    citation = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    (paper,) = citation["references"]
    assert paper["title"] == "Multi-Task Learning with BERT"
    assert paper["authors"][0]["family-names"] == "Kumar"


def test_readme_states_the_terms_of_every_dataset_and_encoder_used():
    section = README.read_text(encoding="utf-8").split("## Licences and citation")[1]
    for source in ("CS224N", "SST", "Quora Question Pairs", "STS-B", "all-MiniLM-L6-v2",
                   "bert-base-uncased"):  # fmt: skip
        assert f"| {source}" in section, source
    assert "Apache-2.0" in section and "LICENSE" in section and "CITATION.cff" in section
