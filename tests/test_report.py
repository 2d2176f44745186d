"""The HTML report in a real browser, claims.csv beside it, and the report rules in the real DAG."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake
from tests.fake_runs import write_fake_runs
from workflow_src.analysis import __main__ as analysis
from workflow_src.analysis import aggregate, claims, curves, floors
from workflow_src.render import report
from workflow_src.spec.grid import build_cells, build_tables

SCRIPT_TEXT = "Attack <script>document.title='pwned'</script> stays text"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


def config() -> dict:
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """results/report.html from fake runs at 3 seeds (Quora stand-in, a <script> in the data)."""
    root = tmp_path_factory.mktemp("report")
    grid = config()["grid"]
    runs = write_fake_runs(
        root / "results" / "runs", seeds=(1, 2, 3), standin=True, gpu_name=SCRIPT_TEXT
    )
    results = root / "results"
    assert aggregate.main(
        ["--runs", *map(str, runs), "--metrics-csv", str(results / "metrics.csv"),
         "--summary-csv", str(results / "summary.csv"), "--epochs-csv", str(results / "epochs.csv")]
    ) == 0  # fmt: skip
    claims_file = root / "claims.yaml"
    document = yaml.safe_load((REPO_ROOT / "report" / "claims.yaml").read_text())
    document["claims"][0]["text"] = SCRIPT_TEXT
    claims_file.write_text(yaml.safe_dump(document))
    # the analysis decides (claims.csv, floors.csv); the report only reads what it wrote
    assert analysis.main(
        ["--runs", *map(str, runs), "--claims", str(claims_file),
         "--claims-csv", str(results / "claims.csv"), "--floors-csv", str(results / "floors.csv")]
    ) == 0  # fmt: skip
    # a second shipped scale, as reference/regime/claims.csv is: no Quora, other numbers
    decided = pd.read_csv(results / "claims.csv")
    regime = decided[(decided.task != "quora") & (decided.claim != "bert-beats-bilstm")].copy()
    regime[["difference", "ci_low", "ci_high"]] += 10
    regime.to_csv(root / "regime-claims.csv", index=False)
    assert report.main(
        ["--metrics-csv", str(results / "metrics.csv"), "--summary-csv", str(results / "summary.csv"),
         "--epochs-csv", str(results / "epochs.csv"), "--paper", str(REPO_ROOT / "report/paper_results.yaml"),
         "--claims", str(claims_file), "--grid-json", json.dumps(grid), "--preset", "quick",
         "--encoder", "embedded", "--seeds", "1", "2", "3", "--epoch-scale", "0.1",
         "--output", str(results / "report.html"), "--plots-dir", str(results / "plots"),
         "--claims-csv", str(results / "claims.csv"), "--floors-csv", str(results / "floors.csv"),
         "--forest", str(results / "claims"), "--also-claims", f"regime={root / 'regime-claims.csv'}"]
    ) == 0  # fmt: skip
    return results / "report.html"


def chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs it)")
def test_console_detector_sees_a_console_error(tmp_path):
    """The check below would notice a console error (so its silence means something)."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom')</script></body></html>")
    result = chromium("--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert any("boom" in line for line in console_messages(result.stderr))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs it)")
def test_report_renders_in_chromium_with_every_table_and_plot(built, tmp_path):
    """No console messages; nine tables and two supplements, twenty decodable plots; <script> in
    the data is text;
    a full-page screenshot is saved beside the report (and to $REPORT_SCREENSHOT when set)."""
    result = chromium("--dump-dom", built.as_uri(), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    dom = result.stdout
    assert "<script" not in dom.lower()
    assert "Attack &lt;script&gt;document.title='pwned'&lt;/script&gt; stays text" in dom
    assert "<title>Multi-Task Learning with BERT: reproduction report</title>" in dom
    for anchor in [*(f"table{n}" for n in range(1, 10)), "table8-supplement", "table9-supplement"]:
        assert f'id="{anchor}"' in dom
    assert dom.count('<table class="results">') == 11
    images = re.findall(r'<img class="plot" src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) == 20
    assert all(base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n") for data in images)

    shot = built.with_name("report.png")
    result = chromium(
        "--window-size=1280,9000", f"--screenshot={shot}", built.as_uri(), tmp_path=tmp_path
    )
    assert result.returncode == 0 and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")
    if os.environ.get("REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["REPORT_SCREENSHOT"])


def test_report_is_self_contained_with_notes_provenance_and_run_links(built):
    html = built.read_text()
    assert not re.search(r'<(img|link|script)[^>]+(src|href)="(?!data:)', html)
    assert "Quora and cosine-head STS numbers" in html and "0.84" in html
    assert "compare cells with each other" in html
    assert "This preset checks the pipeline" not in html  # the fixture's report is no check
    assert "Quora train was a stand-in" in html
    assert "torch" in html and "5.24.0" in html and "0123456789abcdef" in html
    links = re.findall(r'<a href="([^"#]+metrics\.json)">', html)
    assert len(links) == len(build_cells(config()["grid"])) * 3
    assert all((built.parent / link).is_file() for link in links)
    assert sorted(p.name for p in (built.parent / "plots").iterdir())[:2] == [
        "table2_bars.png",
        "table2_curves.png",
    ]


def test_claims_csv_has_every_comparison_of_every_claim_beside_the_page(built):
    """One row per comparison; with 3 seeds nothing is indicative; the page shows the same
    verdicts, the paper's sentences and how the statistics were made."""
    rows = pd.read_csv(built.with_name("claims.csv"))
    listed = claims.load_claims(REPO_ROOT / "report" / "claims.yaml")
    assert list(rows.columns) == claims.CSV_COLUMNS
    assert len(rows) == sum(len(c.comparisons) for c in listed)
    assert list(dict.fromkeys(rows["claim"])) == [c.id for c in listed]
    assert set(rows["verdict"]) <= {claims.REPRODUCED, claims.CONTRADICTED, claims.INCONCLUSIVE}
    assert (rows["seeds"] == 3).all() and not rows["indicative"].any()
    assert rows["p_value"].between(0, 1).all() and (rows["ci_low"] <= rows["ci_high"]).all()
    html = built.read_text()
    assert "Welch&ndash;Satterthwaite" in html and "<h3>SMART's form</h3>" in html
    assert "We didn&#39;t see performance bump from SMART regularization" in html
    assert "Table 8, supplement (not in the paper)" in html


def test_floors_csv_checks_every_single_task_bert_cell_twice_and_the_page_shows_them(built):
    rows = pd.read_csv(built.with_name("floors.csv"))
    runs = pd.read_csv(built.with_name("metrics.csv"))
    single = runs[(runs.model == "bert") & ~runs.tasks.str.contains("+", regex=False)]
    assert list(rows.columns) == floors.COLUMNS
    assert len(rows) == 2 * single.cell.nunique() and (rows.seeds == 3).all()
    assert set(rows.floor) == {floors.MAJORITY, "sst-bilstm", "quora-bilstm", "sts-bilstm"}
    assert set(rows.loc[rows.expected_to_fail, "cell"]) == set(floors.EXPECTED_TO_FAIL)
    html = built.read_text()
    assert '<section id="floors">' in html and "<h2>Does every cell train?</h2>" in html
    assert f"<strong>{floors.summary(rows)}</strong>" in html
    assert html.count('<span class="badge clears">') == (rows.verdict == floors.CLEARS).sum()


# ----------------------------------------------------------------------------- the DAG


@pytest.fixture
def workflow(tmp_path) -> Path:
    """The workflow's files in a scratch folder, so no test touches the repository's results."""
    return copy_workflow(tmp_path)


def planned_jobs(output: str) -> dict[str, list[str]]:
    """rule name -> the wildcards line of each job of a dry run."""
    jobs: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=\[|rule |localrule )", output):
        match = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if match:
            wildcards = re.search(r"wildcards: (.*)", block)
            jobs.setdefault(match[1], []).append(wildcards[1] if wildcards else "")
    return jobs


@pytest.mark.parametrize("runs_present", [False, True])
def test_table9_dry_run_plans_only_table9_runs(workflow, runs_present):
    """`snakemake -n results/table9.tex` trains Table 9's cells (every seed) and nothing else."""
    seeds = config()["presets"][config()["preset"]]["seeds"]
    cells = build_tables(config()["grid"])[9].cells()
    if runs_present:
        write_fake_runs(workflow / "results" / "runs", seeds=seeds)
    result = run_snakemake("-n", "results/table9.tex", cwd=workflow, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = planned_jobs(result.stdout + result.stderr)
    assert jobs["render_table"] == ["n=9"]
    assert jobs["copy_table"] == ["n=9"]  # results/table9.tex <- results/quick/table9.tex
    trained = sorted(jobs.get("train_cell", []))
    if runs_present:
        assert trained == []
        assert set(jobs) == {"render_table", "copy_table"}
    else:
        assert trained == sorted(f"cell={c}, seed={s}" for c in cells for s in seeds)
        inputs = {"download_data", "save_tokenizer", "tokenize_split"}  # what training reads
        assert set(jobs) <= {"render_table", "copy_table", "train_cell", *inputs}


def test_snakemake_report_target_and_snakemakes_own_report(workflow):
    """`snakemake report` builds results/quick/report.html although `report()` flags the
    outputs; `snakemake --report` then collects the tables, the plots and the page."""
    write_fake_runs(workflow / "results" / "runs", seeds=config()["presets"]["quick"]["seeds"])
    targets = ["report", "results/table1.tex", "results/table9.tex"]  # all nine: test_tables
    result = run_snakemake("--cores", "4", *targets, cwd=workflow, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workflow / "results" / "quick" / "report.html").stat().st_size > 100_000
    table9 = (workflow / "results" / "table9.tex").read_text()  # the preset in force's copy
    assert "preset quick" in table9
    assert table9 == (workflow / "results" / "quick" / "table9.tex").read_text()
    result = run_snakemake("--report", "report.html", *targets, cwd=workflow, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    added = re.findall(r"Adding (\S+) \(", result.stderr + result.stdout)
    assert {"table1.tex", "table9.tex", "report.html", "summary.csv", "table9_bars.png"} <= set(
        added
    )
    # the workflow-level description (report/workflow.rst), with the preset filled in
    own = (workflow / "report.html").read_text()
    assert "Multi-Task Learning with BERT</em> (Naveen Kumar" in own
    assert 'at preset <tt class=\\"docutils literal\\">quick</tt>' in own


def test_a_pipeline_check_preset_says_so_first_and_points_to_the_evidence():
    summary = pd.DataFrame({"n": [1]})
    runs = pd.DataFrame({"cell": ["sst-base"]})
    context = report.tables.Context("quick", "embedded", (1,), epoch_scale=0.1)
    notes = report.page_notes(runs, summary, set(), context, pipeline_check=True)
    assert notes[0] == report.PIPELINE_CHECK_NOTE
    assert "cpu preset" in notes[0] and "What the reproduction found" in notes[0]
    assert "reference/cpu/report.html" in notes[0]
    assert report.PIPELINE_CHECK_NOTE not in report.page_notes(runs, summary, set(), context)


def test_cells_outside_a_presets_subset_are_not_reported_as_runs_to_come():
    """Issue 24: the regime trains 17 of the grid's cells; the other 28 are outside it, which the
    page says as such, apart from a chosen cell whose runs are still missing."""
    every = report.shown_cells(config()["grid"])
    assert every == set(build_cells(config()["grid"]))  # the supplements' cells among them
    chosen = ["sst-base", "sst-lr1e-4", "sts-base"]
    runs = pd.DataFrame({"cell": ["sst-base", "sts-base"]})
    context = report.tables.Context("regime", "embedded", (1, 2, 3))
    notes = report.page_notes(runs, pd.DataFrame({"n": [3]}), every, context, cells=chosen)
    outside = next(note for note in notes if "not part of it" in note)
    assert outside.startswith(f"The regime preset trains 3 of the grid's {len(every)} cells")
    assert outside.endswith(f"{', '.join(sorted(every - set(chosen)))}.")
    assert notes[-1] == "No runs yet for 1 cell: sst-lr1e-4."
    whole = report.page_notes(runs, pd.DataFrame({"n": [3]}), every, context)
    assert not any("not part of it" in note for note in whole)
    assert whole[-1].startswith(f"No runs yet for {len(every) - 2} cells")


@pytest.mark.parametrize(("preset", "is_check"), [("tiny", True), ("quick", True), ("cpu", False)])
def test_the_report_rule_passes_the_presets_pipeline_check_flag(preset, is_check):
    result = run_snakemake("report", "-n", "-p", "--forceall", "--config", f"preset={preset}")
    assert result.returncode == 0, result.stderr[-3000:]
    command = next(
        line
        for line in result.stdout.splitlines()
        if "python -m workflow_src.render.report" in line
    )
    assert ("--pipeline-check" in command) is is_check


# ----------------------------------------------------------------------------- the first screen

MEASURE = """<script>
window.addEventListener('load', () => {
  const box = (selector) => {
    const el = document.querySelector(selector);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
            loaded: el.tagName !== 'IMG' || (el.complete && el.naturalWidth > 0)};
  };
  const found = {viewport: [innerWidth, innerHeight],
                 sentence: box('#verdicts .verdict p'), forest: box('#forest img')};
  document.body.setAttribute('data-first-screen', JSON.stringify(found));
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs it)")
def test_the_first_screen_holds_the_verdict_sentence_and_the_forest_plot(built, tmp_path):
    """At 1280x800 the first verdict sentence and the whole forest plot (loaded) lie inside the
    viewport, with no console message; a screenshot of that screen is kept beside the page.
    The measuring script is added to a copy: the report itself runs no script."""
    measured = tmp_path / "measured.html"
    measured.write_text(built.read_text().replace("</body>", MEASURE + "</body>"))
    result = chromium(
        "--window-size=1280,800", "--virtual-time-budget=5000", "--dump-dom",
        measured.as_uri(), tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    found = json.loads(
        re.search(r'data-first-screen="([^"]+)"', result.stdout)[1].replace("&quot;", '"')
    )
    # headless Chromium's window holds its (invisible) toolbars: the page is 1280 wide, as
    # asked, and lower; the page's layout uses no viewport height, so its first 800 pixels are
    # what a 1280x800 screen shows (the screenshot below is exactly that)
    width, height = found["viewport"][0], 800
    assert width == 1280
    for name in ("sentence", "forest"):
        box = found[name]
        assert box is not None, name
        assert box["top"] >= 0 and box["bottom"] <= height, (name, box)
        assert box["left"] >= 0 and box["right"] <= width, (name, box)
    assert found["forest"]["loaded"]
    assert found["forest"]["bottom"] - found["forest"]["top"] > 400  # drawn large enough to read
    shot = built.with_name("first-screen.png")
    result = chromium(
        "--window-size=1280,800", f"--screenshot={shot}", built.as_uri(), tmp_path=tmp_path
    )
    assert result.returncode == 0 and shot.stat().st_size > 20_000


def test_the_page_opens_with_a_sentence_per_verdict_class_and_writes_the_forest_files(built):
    rows = pd.read_csv(built.with_name("claims.csv"))
    per_claim = rows.drop_duplicates("claim")
    html = built.read_text()
    total = len(per_claim)
    for verdict, count in per_claim["claim_verdict"].value_counts().items():
        words = report.verdicts.VERDICT_WORDS[verdict]
        assert f"{count} of the paper&#39;s {total} findings {words} at the quick scale" in html
    assert html.index('id="answer"') < html.index('id="overview"') < html.index('id="claims"')
    assert built.with_name("claims.png").read_bytes().startswith(b"\x89PNG")
    assert built.with_name("claims.pdf").read_bytes().startswith(b"%PDF")


def test_each_claim_shows_its_verdict_at_the_other_shipped_scale_on_the_same_comparison(built):
    """Issue 24: the claims table sets the regime's verdict beside this preset's, each with the
    key comparison's difference and interval; where the regime lacks that comparison (it trains no
    Quora), its own key comparison, named."""
    html = built.read_text()
    assert "<th>Reproduced at quick</th><th>at regime</th>" in html
    here = pd.read_csv(built.with_name("claims.csv"))
    regime = pd.read_csv(built.parent.parent / "regime-claims.csv")
    section = html[html.index('<section id="claims">') : html.index('<section id="tables">')]
    rows = {row.split('"')[0]: row for row in section.split('<tr id="claim-')[1:]}
    assert set(rows) == set(here.claim)
    shown = {"same": 0, "named": 0, "not run": 0}
    for claim, decided in here.groupby("claim", sort=False):
        cells = re.findall(r'<td class="scale">.*?</td>', rows[claim], re.S)
        assert len(cells) == 2, claim
        key = next(decided[decided.verdict == decided.claim_verdict].itertuples(), None)
        key = key or next(decided.itertuples())
        same = regime[(regime.claim == claim) & (regime.comparison == key.comparison)]
        assert f"{key.difference:+.1f} [{key.ci_low:+.1f}, {key.ci_high:+.1f}]" in cells[0]
        if len(same):
            assert f"{same.difference.iloc[0]:+.1f} [" in cells[1] and " on <code>" not in cells[1]
            shown["same"] += 1
        elif (regime.claim == claim).any():
            assert " on <code>" in cells[1], claim  # names the comparison it quotes instead
            shown["named"] += 1
        else:
            assert "not run" in cells[1], claim
            shown["not run"] += 1
    assert all(shown.values()), shown
    answer = html[html.index('id="answer"') : html.index('id="overview"')]
    assert (
        '<p class="scales">Of the ' in answer
        and "findings decided at both quick and regime" in answer
    )


def test_floors_follow_the_papers_tables_and_captions_fold_their_detail(built):
    html = built.read_text()
    assert html.index('id="table9-supplement"') < html.index('id="floors"')
    for caption in re.findall(r'<(?:p|div) class="caption">(.*?)</(?:p|div)>', html, re.S):
        shown = re.sub(r"<details>.*?</details>", "", caption, flags=re.S)
        words = len(re.sub(r"<[^>]+>", "", shown).split())
        assert words <= 60, shown  # three lines at the page's width, the rest behind "more"


def test_cells_are_flagged_for_floors_and_the_shipped_spread_never_for_the_paper(built):
    """The paper's value is shown plain; a cell is flagged only below its floors (none with
    the fake runs, which all train) or, given a shipped summary, outside its interval."""
    html = built.read_text()
    assert 'class="pos"' not in html and 'class="neg"' not in html
    floor_rows = pd.read_csv(built.with_name("floors.csv"))
    below = report.floors_below(floor_rows)
    assert html.count('<span class="mark" title=') == sum(
        html.count(f'data-cell="{cell}"') for cell, _ in below
    )
    shipped = aggregate.read_summary(built.with_name("summary.csv")).copy()
    shipped["ci_low"] = shipped["ci_high"] = shipped["mean"] + 0.5  # nothing can lie inside
    table = build_tables(config()["grid"])[3]
    view = report.table_view(table, shipped, None, "best")
    report.mark_flags(view, table, {}, report.tables.lookup(shipped, "best"))
    flagged = [cell.flagged for _, line in view.rows for cell in line if cell.mean is not None]
    assert flagged and all(flagged)
    view = report.table_view(table, shipped, None, "best")
    report.mark_flags(view, table, {("sst-base", "sst"): "sst-bilstm"}, {})
    reasons = {cell.cell: cell.flag_reason for _, line in view.rows for cell in line}
    assert reasons["sst-base"] == "below its floor (sst-bilstm)"
    assert sum(bool(reason) for reason in reasons.values()) == 1


# ----------------------------------------------------------------------------- curves


def epoch_points(epochs_by_cell: dict[str, int]) -> pd.DataFrame:
    rows = [
        {"cell": cell, "seed": seed, "epoch": epoch, "task": "sst", "metric": "accuracy",
         "value": 0.3 + 0.01 * epoch + 0.001 * seed}
        for cell, epochs in epochs_by_cell.items()
        for seed in (1, 2)
        for epoch in range(1, epochs + 1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_curve_of_one_point_is_not_drawn():
    table = build_tables(config()["grid"])[3]  # dropout: the SST row's cells
    sst = next(row for row in table.rows if row.task == "sst")
    one_epoch = epoch_points({cell: 1 for cell in sst.cells})
    assert report.plots.curve_plot(table, one_epoch) is None
    longer = epoch_points({sst.cells[0]: 3})
    assert report.plots.curve_plot(table, longer).startswith(b"\x89PNG")


def test_within_epoch_curves_are_drawn_against_the_update(tmp_path):
    """metrics.json's "curve" (dev metrics every k updates on a fixed dev sample) as curves.csv
    holds it: a one-epoch cell still gets a learning curve; a run without one adds no rows."""
    table = build_tables(config()["grid"])[3]
    cell = next(row for row in table.rows if row.task == "sst").cells[0]
    (path,) = write_fake_runs(tmp_path, seeds=(1,), cells=[cell], epochs=1)
    record = json.loads(path.read_text())
    record["curve"] = {
        "every_updates": 50,
        "dev_rows": {"sst": 100},
        "points": [{"update": u, "epoch": 1, "dev": {"sst": {"accuracy": 0.2 + u / 1000,
                    "macro_f1": 0.1}}} for u in (50, 100, 150)],
    }  # fmt: skip
    path.write_text(json.dumps(record))
    (plain,) = write_fake_runs(tmp_path / "plain", seeds=(2,), cells=[cell], epochs=1)
    output = tmp_path / "curves.csv"
    assert curves.main(["--runs", str(path), str(plain), "--output", str(output)]) == 0
    points = pd.read_csv(output)
    assert list(points.columns) == curves.COLUMNS
    assert len(points) == 6 and set(points["seed"]) == {1} and set(points["dev_rows"]) == {100}
    assert report.plots.curve_plot(table, points, x="update").startswith(b"\x89PNG")
    record["curve"]["points"][0]["dev"] = "oops"
    path.write_text(json.dumps(record))
    assert curves.main(["--runs", str(path), "--output", str(output)]) == 1


def test_an_undefined_r_in_a_curve_is_a_gap_not_an_error(tmp_path):
    """A STS head that predicts one constant on the curve's dev sample has no Pearson r there:
    the run writes null (as the regime's sts-head-multiply did, early in epoch 2). curves.csv
    keeps the point with an empty value and the plot draws around it; a value that is no number
    at all is still refused."""
    table = build_tables(config()["grid"])[3]
    cell = next(row for row in table.rows if row.task == "sts").cells[0]
    (path,) = write_fake_runs(tmp_path, seeds=(1,), cells=[cell], epochs=1)
    record = json.loads(path.read_text())
    values = {50: 0.1, 100: None, 150: 0.3}
    record["curve"] = {
        "every_updates": 50,
        "dev_rows": {"sts": 64},
        "points": [{"update": u, "epoch": 1, "dev": {"sts": {"pearson": r, "spearman": r}}}
                   for u, r in values.items()],
    }  # fmt: skip
    path.write_text(json.dumps(record))
    output = tmp_path / "curves.csv"
    assert curves.main(["--runs", str(path), "--output", str(output)]) == 0
    pearson = pd.read_csv(output).query("metric == 'pearson'").set_index("update")["value"]
    assert pearson[50] == 0.1 and pd.isna(pearson[100]) and pearson[150] == 0.3
    points = pd.read_csv(output)
    assert report.plots.curve_plot(table, points, x="update").startswith(b"\x89PNG")
    record["curve"]["points"][1]["dev"]["sts"]["pearson"] = "undefined"
    path.write_text(json.dumps(record))
    assert curves.main(["--runs", str(path), "--output", str(output)]) == 1
