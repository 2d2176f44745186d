"""requirements.txt (pip) and environment.yml (conda) pin the same versions."""

from __future__ import annotations

import yaml

from tests.conftest import REPO_ROOT


def pins_from_requirements() -> dict[str, str]:
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in (line.split("#")[0].strip() for line in lines) if line)


def pins_from_environment() -> dict[str, str]:
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    [pip] = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    return dict(line.split("==") for line in pip)


def test_every_requirement_is_pinned_exactly():
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        assert not line or "==" in line, f"unpinned requirement: {line}"


def test_requirements_and_environment_agree():
    assert pins_from_requirements() == pins_from_environment()


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert pins_from_requirements()["torch"] == "2.13.0"


def test_snakemake_is_9x():
    assert pins_from_requirements()["snakemake"].startswith("9.")
