"""The code stays ruff-clean and the Snakemake files snakefmt-formatted."""

from __future__ import annotations

import ast
import subprocess

from tests.conftest import REPO_ROOT, tool

PACKAGE = REPO_ROOT / "workflow_src"
MAX_FUNCTION_LINES = 100


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_is_clean():
    result = run(tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run(tool("ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    smk_files = [
        "Snakefile",
        *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "rules").glob("*.smk")),
    ]
    result = run(tool("snakefmt"), "--check", *smk_files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_function_in_workflow_src_is_longer_than_100_lines():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name}() has {lines} lines")
    assert long == []


def package_imports(path) -> set[str]:
    """Modules of workflow_src that `path` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                names |= {node.module} if node.module else {a.name for a in node.names}
            elif node.module == "workflow_src":
                names |= {alias.name for alias in node.names}
            elif (node.module or "").startswith("workflow_src."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {
                a.name.split(".")[1] for a in node.names if a.name.startswith("workflow_src.")
            }
    return names & {p.stem for p in PACKAGE.glob("*.py")}


def test_workflow_src_modules_import_no_circle():
    graph = {path.stem: package_imports(path) for path in PACKAGE.glob("*.py")}
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        for imported in sorted(graph[module]):
            if imported in stack:
                cycles.append(" -> ".join([*stack[stack.index(imported) :], imported]))
            else:
                visit(imported, [*stack, imported])

    for module in sorted(graph):
        visit(module, [module])
    assert cycles == []
