"""The package's shape (ARCHITECTURE.md, issue 22 item 3): small modules and functions, imports
that run one way (no circle; data never imports train; analysis and render never reach torch or
transformers, directly or through another module of the package) and a code version that sees
every file.

Imports are read from the source (ast), at the top of a module and inside its functions alike:
the package imports its torch-side modules lazily, and a lazy import is still an import.
"""

from __future__ import annotations

import ast
import shutil
import sys
from functools import cache
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "workflow_src"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
TORCH_SIDE = {"torch", "transformers", "safetensors", "tokenizers", "huggingface_hub"}

# Over the limits today and being split by their owners in the same round of work; the lead
# removes each entry when the split is merged. Nothing else may join this list.
KNOWN_OVER_LIMIT: set[str] = set()  # none: every module is within the limits


def modules() -> dict[str, Path]:
    """Dotted name (relative to workflow_src; a package by its own name) -> file."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts) or "__init__"] = path
    return found


def resolve(base: str, names: list[str], known: dict[str, Path]) -> set[str]:
    """Modules of the package that `from workflow_src.<base> import <names>` runs: each name
    that is a module itself, else `base` (and every package on the way, whose __init__ runs)."""
    hit = {f"{base}.{n}" if base else n for n in names} & set(known)
    targets = hit or ({base} if base else set())
    packages = {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 1)}
    return (targets | packages) & set(known)


@cache
def imports(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(modules of the package, top-level third-party names) that module `name` imports."""
    known = modules()
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inner, outer = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workflow_src."):
                    inner |= resolve(alias.name.removeprefix("workflow_src."), [], known)
                elif alias.name != "workflow_src":
                    outer.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:  # relative: from .x import y
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
                inner |= resolve(base, names, known)
            elif node.module == "workflow_src" or node.module.startswith("workflow_src."):
                inner |= resolve(node.module.removeprefix("workflow_src").lstrip("."), names, known)
            elif node.module != "__future__":
                outer.add(node.module.split(".")[0])
    outer -= set(sys.stdlib_module_names)
    return frozenset(inner - {name}), frozenset(outer)


def reachable(name: str) -> set[str]:
    """Every module of the package that importing `name` can run (itself included)."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(imports(current)[0])
    return seen


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


# ----------------------------------------------------------------------------- sizes


def test_no_module_is_longer_than_450_lines():
    long = {
        relative(path): lines
        for path in modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert set(long) - KNOWN_OVER_LIMIT == set(), long


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in modules().values():
        if relative(path) in KNOWN_OVER_LIMIT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{relative(path)}:{node.lineno} {node.name}() has {lines} lines")
    assert long == []


def test_the_known_exceptions_are_still_files_of_the_package():
    """An entry left behind after its split would excuse a new file of that name."""
    assert {relative(path) for path in modules().values()} >= KNOWN_OVER_LIMIT


# ----------------------------------------------------------------------------- imports


def test_the_import_reader_follows_packages_relative_and_lazy_imports():
    assert "data.prepare" in imports("train.loop")[0]  # top of the module
    assert "train.checkpoint" in imports("train.loop")[0]  # inside run()
    assert "torch" in imports("train.build")[1]  # inside a function
    assert {"data", "data.encoders"} <= imports("data.prepare")[0]  # the package's __init__ too
    assert "torch" in set().union(*(imports(m)[1] for m in reachable("train.loop")))


def test_workflow_src_modules_import_no_circle():
    cycles = set()

    def visit(module: str, stack: list[str]) -> None:
        for imported in sorted(imports(module)[0]):
            if imported in stack:
                cycle = stack[stack.index(imported) :]
                start = cycle.index(min(cycle))
                cycles.add(" -> ".join([*cycle[start:], *cycle[:start], min(cycle)]))
            elif imported not in done:
                visit(imported, [*stack, imported])
        done.add(module)

    done: set[str] = set()
    for module in modules():
        if module not in done:
            visit(module, [module])
    assert cycles == set()


def test_nothing_under_data_imports_train():
    reaching = {
        module: sorted(m for m in reachable(module) if m == "train" or m.startswith("train."))
        for module in modules()
        if module == "data" or module.startswith("data.")
    }
    assert {m: r for m, r in reaching.items() if r} == {}


def test_nothing_under_analysis_or_render_reaches_torch_or_transformers():
    reaching = {}
    for module in modules():
        if module.split(".")[0] not in ("analysis", "render"):
            continue
        through = {
            m: sorted(imports(m)[1] & TORCH_SIDE) for m in reachable(module) if imports(m)[1] & TORCH_SIDE
        }  # fmt: skip
        if through:
            reaching[module] = through
    assert reaching == {}


# ----------------------------------------------------------------------------- code version


def test_code_version_changes_when_a_nested_module_changes(tmp_path):
    """Editing a module in a subfolder (or adding one) ends the resume of a checkpoint: a
    folder-deep hash would have missed it once the package moved into one folder per stage."""
    from workflow_src.train.record import code_version

    copy = tmp_path / "workflow_src"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    before = code_version(copy)
    assert code_version() == before  # a function of the files alone, wherever they lie
    nested = copy / "analysis" / "floors.py"
    nested.write_text(nested.read_text() + "\n# an edit\n")
    edited = code_version(copy)
    assert edited != before
    (copy / "render" / "deeper").mkdir()
    (copy / "render" / "deeper" / "new.py").write_text("X = 1\n")
    assert code_version(copy) not in (before, edited)
