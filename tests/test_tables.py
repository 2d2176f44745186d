"""The LaTeX tables: golden files, escaping, bold marks, captions, and a real pdflatex compile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import unescape as html_unescape

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.fake_runs import write_fake_runs
from workflow_src.analysis import aggregate
from workflow_src.render import tables
from workflow_src.spec.grid import Row, Table, build_tables

GOLDEN = REPO_ROOT / "tests" / "golden"
PAPER = REPO_ROOT / "report" / "paper_results.yaml"
SPECIALS = "quick_&%$#{}~^\\<>|"
CONTEXT = tables.Context("quick", "embedded", (1, 2, 3), epoch_scale=0.1, stage="best")


@pytest.fixture(scope="module")
def grid() -> dict:
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["grid"]


@pytest.fixture(scope="module")
def paper() -> dict:
    return tables.load_paper(PAPER)


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    """A small fixed summary: Table 9 at 3 seeds, Table 3 at 2, Table 7's other heads at 1."""
    return aggregate.read_summary(GOLDEN / "summary.csv")


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


def test_golden_summary_intervals_follow_aggregate():
    """tests/golden/summary.csv is a fixed input (4 decimals, N = 500 dev examples as in the fake
    runs); its intervals are what aggregate.cell_interval gives for each row's mean, sd, n and N.
    UPDATE_GOLDEN=1 rewrites the interval columns only (review the diff)."""
    path = GOLDEN / "summary.csv"
    frame = aggregate.read_summary(path)
    expected = [
        aggregate.cell_interval(r.metric, r.mean, r.sd, int(r.n), float(r.dev_examples))
        for r in frame.itertuples()
    ]
    expected = pd.DataFrame(expected, columns=["ci_low", "ci_high"]).round(4)
    if os.environ.get("UPDATE_GOLDEN"):
        frame[["ci_low", "ci_high"]] = expected
        path.write_text(frame.to_csv(index=False, lineterminator="\n"))
    pd.testing.assert_frame_equal(frame[["ci_low", "ci_high"]], expected, check_exact=False)


@pytest.mark.parametrize("number", [3, 4, 7, 8, 9])
def test_tables_match_golden_files(grid, paper, summary, number):
    """Rows, columns, cells "mean ± sd / paper", bold marks and caption, byte for byte.
    Table 4 has cells without runs (shown as --); Table 9 carries the Quora stand-in caveat."""
    context = tables.Context(**{**CONTEXT.__dict__, "quora_standin": number == 9})
    text = tables.render_table(build_tables(grid)[number], summary, paper, context)
    check_golden(f"table{number}.tex", text)


def test_table1_matches_golden_file(grid):
    check_golden("table1.tex", tables.render_table1(grid, CONTEXT))


def test_escape_covers_every_latex_special():
    assert tables.escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert tables.escape(tables.Tex(r"\textbf{x}")) == r"\textbf{x}"


def test_best_is_bold_per_row_per_column_or_not_at_all(grid, paper, summary):
    """Table 9 bolds each row's best, Table 7 the column's best, Table 8 nothing."""
    table9 = tables.render_table(build_tables(grid)[9], summary, paper, CONTEXT)
    rows = [line for line in table9.splitlines() if line.strip().startswith("Semantic")]
    assert rows[0].count(r"\textbf") == 2  # reproduced best and the paper's own bold 46.7
    table7 = latex_cells(tables.table_view(build_tables(grid)[7], summary, paper, "best"))
    assert sum(r"\textbf" in cell.split(" / ")[0] for row in table7 for cell in row) == 1


def test_ties_are_all_bold():
    table = Table(5, "tie", ("a", "b"), (Row("r", "sst", ("x", "y")),))
    summary = pd.DataFrame(
        [
            {"stage": "best", "cell": c, "task": "sst", "metric": "accuracy", "n": 1,
             "mean": 0.5, "sd": float("nan"), "ci_low": 0.5, "ci_high": 0.5}
            for c in "xy"
        ]
    )  # fmt: skip
    cells = latex_cells(tables.table_view(table, summary, None, "best"))
    assert all(cell.startswith(r"\textbf{50.00}") for cell in cells[0])


def latex_cells(view: tables.TableView) -> list[list[str]]:
    return [row["cells"] for row in tables.latex_rows(view)]


def test_a_cell_is_flagged_for_its_floors_or_the_shipped_spread_never_for_the_paper():
    """The paper's value comes from another scale: its distance says nothing by itself."""
    view = tables.CellView("c", n=3, mean=50.0, sd=1.0, low=49.0, high=51.0, paper=52.0)
    assert not view.flagged and view.delta == pytest.approx(-2.0)
    view.below_floor = "majority class"
    assert view.flagged and view.flag_reason == "below its floor (majority class)"
    view.below_floor, view.outside_shipped = "", True
    assert view.flagged and "shipped reproduction" in view.flag_reason


def latex_body_cells(text: str) -> list[list[str]]:
    """The body cells of a LaTeX table as printed, row by row (label dropped)."""
    body = text.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    return [
        [cell.strip() for cell in line.rstrip().removesuffix("\\\\").split(" & ")[1:]]
        for line in body.strip().splitlines()
    ]


def html_table_cells(html: str, anchor: str) -> list[list[str]]:
    """The body cells of one report table: each cell's mean and paper value, or its text."""
    panel = html.split(f'id="{anchor}"', 1)[1].split('<div class="panel"', 1)[0]
    body = panel.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = []
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S):
            if "data-text" in cell or "paper" not in cell:
                cells.append(html_unescape(re.sub(r"<[^>]+>", "", cell)).strip())
                continue
            mean = re.search(r'<span class="(?:best)?">([^<]+)</span>', cell)
            paper = re.search(r"paper (?:<b>)?([-\d.–]+)", cell)
            cells.append((mean[1] if mean else "--", paper[1] if paper else "--"))
        rows.append(cells)
    return rows


@pytest.mark.parametrize("number", [1, 3, 7, 9])
def test_latex_and_html_carry_the_same_cells_from_one_table_model(grid, paper, summary, number):
    """Each table is one TableView; its LaTeX and its HTML show the same rows and cells (Table
    1's text, or each cell's reproduced mean and the paper's value)."""
    from workflow_src.render import report

    views, _ = report.table_views(grid, summary, paper, pd.DataFrame(columns=["cell"]), CONTEXT)
    view = next(v for v in views if v.number == number and not v.label)
    if number == 1:
        text = tables.render_table1(grid, CONTEXT)
    else:
        text = tables.render_table(build_tables(grid)[number], summary, paper, CONTEXT)
    part = report.environment().get_template("report_table.html.j2")
    latex = latex_body_cells(text)
    html = html_table_cells(part.render(t=view, shipped=False) + '<div class="panel"', view.anchor)
    assert len(latex) == len(html) == len(view.rows)
    for latex_row, html_row in zip(latex, html, strict=True):
        if number == 1:
            assert latex_row == [tables.escape(c) for c in html_row]
            continue
        for latex_cell, html_cell in zip(latex_row, html_row, strict=True):
            printed = [re.sub(r"\\textbf\{([^}]*)\}", r"\1", side).split("\\,")[0]
                       for side in latex_cell.split(" / ")]  # fmt: skip
            assert [as_number(side) for side in printed] == [as_number(side) for side in html_cell]


def as_number(text: str) -> float | None:
    """A printed value as a number (None for a dash: no runs, or no paper value)."""
    return None if text.strip() in {"--", "–"} else round(float(text), 2)


def test_caption_names_preset_encoder_seeds_and_caveats(grid, paper, summary):
    context = tables.Context(**{**CONTEXT.__dict__, "quora_standin": True})
    text = tables.render_table(build_tables(grid)[9], summary, paper, context)
    assert "preset quick" in text and "all-MiniLM-L6-v2" in text and "seeds 1, 2, 3" in text
    assert "0.84" in text and "stand-in" in text
    assert "0.1 x the paper's epochs" in text and "compare cells with each other" in text
    bert = tables.Context("paper", "bert-base-uncased", (1, 2, 3))
    text = tables.render_table(build_tables(grid)[7], summary, paper, bert)
    assert "0.84" not in text and "stand-in" not in text and "paper's epochs" not in text


def test_the_minilm_caveat_names_which_numbers_compare_with_the_papers_from_measurements():
    """Not a blanket caveat: SST and the concatenation STS head land near the paper at its
    regime (CALIBRATION.md's measured figures), Quora and the cosine head measure pre-training."""
    note = tables.MINILM_NOTE
    calibration = (REPO_ROOT / "benchmarks" / "CALIBRATION.md").read_text()
    for measured, paper_value in (("474", "52.04"), ("394", "39.15")):
        assert f".{measured}" in calibration and paper_value in calibration
        assert f"{measured[:2]}.{measured[2]} against {paper_value}" in note
    assert "Quora and cosine-head STS numbers" in note and "not comparable" in note


def test_cli_reads_runs_and_writes_atomically(tmp_path, grid):
    """The command aggregates the table's runs itself and leaves no temporary file."""
    import json

    runs = write_fake_runs(
        tmp_path / "runs", seeds=(1, 2), cells=set(build_tables(grid)[9].cells())
    )
    out = tmp_path / "out" / "table9.tex"
    code = tables.main(
        ["--table", "9", "--output", str(out), "--grid-json", json.dumps(grid), "--paper", str(PAPER),
         "--preset", "quick", "--encoder", "embedded", "--seeds", "1", "2", "--runs", *map(str, runs)]
    )  # fmt: skip
    assert code == 0
    assert r"\begin{tabular}{lcc}" in out.read_text()
    assert os.listdir(out.parent) == ["table9.tex"]


def test_cli_names_a_malformed_metrics_file(tmp_path, grid, caplog):
    import json

    bad = tmp_path / "metrics.json"
    bad.write_text('{"run": ')
    code = tables.main(
        ["--table", "9", "--output", str(tmp_path / "t.tex"), "--grid-json", json.dumps(grid),
         "--paper", str(PAPER), "--preset", "quick", "--encoder", "embedded", "--seeds", "1",
         "--runs", str(bad)]
    )  # fmt: skip
    assert code == 1
    assert str(bad) in caplog.text
    assert not (tmp_path / "t.tex").exists()


@pytest.mark.skipif(
    shutil.which("pdflatex") is None, reason="pdflatex not installed (CI installs texlive)"
)
def test_all_nine_tables_compile_with_pdflatex(tmp_path, grid, paper):
    """Tables 1-9 from fake runs, a preset name full of LaTeX specials in every caption, and a
    table whose labels are specials, in one document: pdflatex must finish without an error."""
    runs = write_fake_runs(tmp_path / "runs", seeds=(1, 2))
    run_frame, _ = aggregate.load_runs(runs)
    summary = aggregate.summarize(run_frame)
    context = tables.Context(SPECIALS, "bert_base & co", (1, 2), 0.1, "best", quora_standin=True)
    bodies = [tables.render_table1(grid, context)]
    bodies += [tables.render_table(t, summary, paper, context) for t in build_tables(grid).values()]
    weird = Table(
        10, f"caption {SPECIALS}", (f"col {SPECIALS}",), (Row(SPECIALS, "sst", ("sst-base",)),)
    )
    bodies.append(tables.render_table(weird, summary, paper, context))
    (tmp_path / "tables.tex").write_text(tables.document(bodies))
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert result.returncode == 0, log[-3000:]
    assert "\n! " not in log, log[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 0
    if shutil.which("mutool"):  # the specials come out as characters, not as markup
        text = subprocess.run(
            ["mutool", "draw", "-F", "txt", "-o", "-", "tables.pdf"],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        text = text.translate({ord("˜"): "~", ord("ˆ"): "^", ord(" "): None, ord("\n"): None})
        assert "quick&%$#{}~^\\<>|" in text  # OT1 draws \_ as a rule, extracted as a space


def test_an_extra_axis_table_renders_without_paper_values(tmp_path, grid):
    """Table 11 of a `pair_encoding` overlay: reproduced values, no paper column to compare."""
    import json

    extended = {**grid, "pair_encoding": ["separate", "joint"]}
    runs = write_fake_runs(
        tmp_path / "runs", seeds=(1,), grid=extended, cells=set(build_tables(extended)[11].cells())
    )
    out = tmp_path / "table11.tex"
    code = tables.main(
        ["--table", "11", "--output", str(out), "--grid-json", json.dumps(extended), "--paper",
         str(PAPER), "--preset", "quick", "--encoder", "embedded", "--seeds", "1", "--runs",
         *map(str, runs)]
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    assert "Extension (not in the paper)" in text and r"pair\_encoding=joint" in text
    with pytest.raises(SystemExit):  # the shipped grid has no Table 11
        tables.main(["--table", "11", "--output", str(out), "--grid-json", json.dumps(grid),
                     "--paper", str(PAPER), "--preset", "quick", "--encoder", "embedded",
                     "--seeds", "1", "--runs", *map(str, runs)])  # fmt: skip
