"""report/paper_results.yaml against the paper's own markdown, value by value; claims on the paper."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO_ROOT
from workflow_src.analysis import claims
from workflow_src.render import tables
from workflow_src.spec.grid import build_cells, build_tables

PAPER_MD = REPO_ROOT / "../shared/paper/multitask-bert-paper.md"
PAPER_RESULTS = REPO_ROOT / "report" / "paper_results.yaml"


def strip(text: str) -> str:
    return re.sub(r"</?b>", "", text).strip()


def markdown_tables() -> dict[int, dict]:
    """Tables 2-9 of the paper's markdown: caption, header, rows (values in percent), bold cells."""
    if not PAPER_MD.is_file():
        pytest.skip(f"paper not found at {PAPER_MD}")
    lines = PAPER_MD.read_text().splitlines()
    found = {}
    for index, line in enumerate(lines):
        match = re.match(r"^Table (\d+): (.*)$", line.strip())
        if not match or int(match[1]) < 2:
            continue
        body, cursor = [], index + 1
        while cursor < len(lines) and not lines[cursor].strip():
            cursor += 1
        while cursor < len(lines) and "\t" in lines[cursor]:
            body.append(lines[cursor].split("\t"))
            cursor += 1
        header, *rows = body
        table = {
            "caption": match[2].strip(),
            "row_header": strip(header[0]),
            "columns": [strip(cell) for cell in header[1:]],
            "rows": {},
            "bold": [],
        }
        for row in rows:
            label = strip(row[0])
            table["rows"][label] = [float(strip(cell).rstrip("%")) for cell in row[1:]]
            table["bold"] += [
                [label, table["columns"][j]] for j, cell in enumerate(row[1:]) if "<b>" in cell
            ]
        found[int(match[1])] = table
    return found


@pytest.fixture(scope="module")
def paper() -> dict:
    return tables.load_paper(PAPER_RESULTS)


def test_markdown_has_tables_2_to_9():
    assert sorted(markdown_tables()) == list(range(2, 10))


@pytest.mark.parametrize("number", range(2, 10))
def test_every_value_matches_the_paper(paper, number):
    """Each typed value, caption, header and bold mark equals what the paper's markdown prints."""
    printed = markdown_tables()[number]
    typed = paper["tables"][number]
    assert typed["caption"] == printed["caption"]
    assert typed["row_header"] == printed["row_header"]
    assert typed["columns"] == printed["columns"]
    assert typed["rows"] == printed["rows"]
    assert sorted(typed["bold"]) == sorted(printed["bold"])


@pytest.mark.parametrize("number", range(2, 10))
def test_grid_tables_find_every_paper_value(paper, number):
    """The grid's row and column labels name every value the paper prints, so none goes unshown."""
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    table = build_tables(config["grid"])[number]
    printed = paper["tables"][number]
    assert set(table.columns) == set(printed["columns"])
    assert {row.label for row in table.rows} == set(printed["rows"])


def test_every_claim_holds_on_the_papers_own_numbers(paper):
    """claims.yaml encodes what the paper says: each claim with tables behind it is reproduced
    by the paper's numbers; only cosine-no-gain has none (the paper never trains without
    cosine annealing). A claim's quote is the paper's text, verbatim."""
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    grid_tables = build_tables(config["grid"])
    claim_list = claims.load_claims(
        REPO_ROOT / "report" / "claims.yaml", known_cells=set(build_cells(config["grid"]))
    )
    assert len(claim_list) >= 18
    results = claims.evaluate_on_paper(claim_list, grid_tables, paper)
    failed = {
        r.claim.id: [(c.comparison.describe(), c.diff) for c in r.results]
        for r in results
        if r.verdict != claims.REPRODUCED and r.claim.paper_tables
    }
    assert not failed
    assert [r.claim.id for r in results if r.verdict == claims.NO_NUMBERS] == ["cosine-no-gain"]
    text = " ".join(PAPER_MD.read_text().split())
    for claim in claim_list:
        if claim.quote:
            assert " ".join(claim.quote.split()) in text, claim.id
