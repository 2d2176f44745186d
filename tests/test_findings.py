"""The README's findings table from a claims.csv, and the README's blocks against theirs."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT
from workflow_src.analysis import claims, floors
from workflow_src.render import findings
from workflow_src.spec.grid import build_tables

CLAIMS_YAML = REPO_ROOT / "report" / "claims.yaml"
README = REPO_ROOT / "README.md"


def claims_csv_frame(seeds: int = 3) -> pd.DataFrame:
    """A claims.csv frame: the paper's own numbers through claims_frame, with intervals
    widened around each point and `seeds` seeds."""
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    paper = yaml.safe_load((REPO_ROOT / "report" / "paper_results.yaml").read_text())
    results = claims.evaluate_on_paper(
        claims.load_claims(CLAIMS_YAML), build_tables(config["grid"]), paper
    )
    frame = claims.claims_frame(results)
    frame["ci_low"] = frame.difference - 1.25
    frame["ci_high"] = frame.difference + 1.25
    frame["seeds"] = seeds
    return frame


def test_one_row_per_claim_in_claims_yaml_order_with_each_interval():
    frame = claims_csv_frame()
    table = findings.render(frame, CLAIMS_YAML)
    rows = table.splitlines()[2:]
    claim_list = [c for c in claims.load_claims(CLAIMS_YAML) if c.id in set(frame.claim)]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [c.text for c in claim_list]
    first = frame[frame.claim == "lr-1e-6-worst"].iloc[0]
    row = next(r for r in rows if r.startswith("| A learning rate of 1e-6 is the worst"))
    assert (
        f"`sst-lr1e-6 < sst-base`: {first.difference:+.1f} "
        f"[{first.difference - 1.25:+.1f}, {first.difference + 1.25:+.1f}], {first.verdict}"
    ) in row
    assert row.count("<br>") == len(frame[frame.claim == "lr-1e-6-worst"]) - 1
    assert row.endswith(f"| **{first.claim_verdict}** |")


def test_labels_drop_a_zero_margin_and_escape_the_pipes_of_a_table():
    assert findings.comparison_label("sts-base:sts > sts-lr1e-4:sts + 0") == (
        "sts-base > sts-lr1e-4"
    )
    assert findings.comparison_label("|sst-dropout0.1:sst - sst-base:sst| <= 2.5") == (
        "\\|sst-dropout0.1 - sst-base\\| <= 2.5"
    )
    assert findings.comparison_label("sst-finetune-none:sst < sst-base:sst - 5") == (
        "sst-finetune-none < sst-base - 5"
    )
    # a multi-task cell keeps its task, or the three tasks' comparisons would read alike
    assert findings.comparison_label(
        "multitask-additive:sts - sts-base:sts > multitask-additive:sst - sst-base:sst + 0"
    ) == ("multitask-additive:sts - sts-base > multitask-additive:sst - sst-base")
    assert findings.comparison_label("multitask-smart:sst <= multitask-additive:sst + 1") == (
        "multitask-smart:sst <= multitask-additive:sst + 1"
    )
    for row in findings.render(claims_csv_frame(), CLAIMS_YAML).splitlines():
        assert row.replace("\\|", "").count("|") == 4, row


def test_a_claim_on_fewer_than_three_seeds_is_labelled_indicative():
    table = findings.render(claims_csv_frame(seeds=1), CLAIMS_YAML)
    assert "(indicative: 1 seed) |" in table
    assert "**" not in table


def test_a_comparison_without_runs_says_what_is_missing():
    frame = claims_csv_frame()
    frame.loc[0, ["difference", "ci_low", "ci_high"]] = float("nan")
    frame.loc[0, "test"] = "missing: sst-dropout0.1:sst"
    assert ": missing: sst-dropout0.1:sst" in findings.render(frame, CLAIMS_YAML)


def test_a_claim_unknown_to_claims_yaml_is_refused_by_name():
    frame = claims_csv_frame()
    frame.loc[0, "claim"] = "made-up-claim"
    with pytest.raises(findings.FindingsError, match="made-up-claim"):
        findings.render(frame, CLAIMS_YAML)


def test_another_csv_is_refused_naming_its_missing_columns(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text("cell,seed\nsst-base,1\n")
    with pytest.raises(findings.FindingsError, match=r"summary.csv: not a claims.csv.*verdict"):
        findings.read_claims_csv(path)


def test_update_rewrites_only_the_block_from_the_csv_it_names(tmp_path):
    claims_csv_frame().to_csv(tmp_path / "claims.csv", index=False)
    before, after = "# Title\n\nIntro.\n\n", "\nAfter the block.\n"
    document = f"{before}<!-- findings: claims.csv -->\nstale table\n<!-- /findings -->{after}"
    (tmp_path / "README.md").write_text(document)
    assert (
        findings.main(["--update", str(tmp_path / "README.md"), "--claims", str(CLAIMS_YAML)]) == 0
    )
    updated = (tmp_path / "README.md").read_text()
    table = findings.render(claims_csv_frame(), CLAIMS_YAML)
    assert updated == f"{before}<!-- findings: claims.csv -->\n{table}<!-- /findings -->{after}"
    assert findings.update(updated, tmp_path, CLAIMS_YAML) == updated  # a second pass: no change


def test_a_second_scales_detail_names_its_scale_in_every_heading(tmp_path):
    """Two detail blocks in one document (docs/findings.md: `cpu`, then `regime`) must not give
    two sections the same heading, so the second names its scale and keeps its own anchors."""
    frame = claims_csv_frame()
    frame.to_csv(tmp_path / "claims.csv", index=False)
    document = (
        "<!-- detail: claims.csv -->\n<!-- /detail -->\n"
        "<!-- detail: claims.csv regime -->\n<!-- /detail -->\n"
    )
    updated = findings.update(document, tmp_path, CLAIMS_YAML)
    headings = [line for line in updated.splitlines() if line.startswith("### ")]
    assert len(headings) == len(set(headings)) == 2 * frame.claim.nunique()
    first, second = headings[: len(headings) // 2], headings[len(headings) // 2 :]
    assert first[0] == "### 1 dropout-small-effect"
    assert second == [f"{heading} at `regime`" for heading in first]
    assert findings.update(updated, tmp_path, CLAIMS_YAML) == updated


def test_update_without_a_block_is_an_error(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("# Notes\n")
    assert findings.main(["--update", str(tmp_path / "notes.md")]) == 1
    assert "no '<!-- findings: PATH -->'" in capsys.readouterr().err


def test_the_readme_findings_agree_with_the_claims_csv_they_name():
    text = README.read_text()
    if not findings.BLOCK.search(text):
        pytest.skip("README.md has no findings block (no reproduction shipped yet)")
    assert findings.update(text, README.parent, CLAIMS_YAML) == text, (
        "README.md's findings differ from the shipped claims.csv: "
        "run `python -m workflow_src.render.findings --update README.md`"
    )


def floors_rows(verdicts: dict[tuple[str, str], str]) -> pd.DataFrame:
    """A floors.csv frame: (cell, floor) -> verdict, with made-up numbers."""
    rows = [
        {
            "cell": cell,
            "task": cell.split("-")[0],
            "floor": floor,
            "value": 45.0,
            "floor_value": 30.0,
            "difference": 15.0,
            "ci_low": 10.0,
            "ci_high": 20.0,
            "seeds": 3,
            "verdict": verdict,
            "expected_to_fail": cell in floors.EXPECTED_TO_FAIL,
        }
        for (cell, floor), verdict in verdicts.items()
    ]
    return pd.DataFrame(rows, columns=floors.COLUMNS)


def test_floors_say_all_clear_in_one_sentence_or_list_every_row_that_does_not(tmp_path):
    cleared = floors_rows(
        {("sst-base", "sst-bilstm"): "clears", ("sst-base", "majority class"): "clears"}
    )
    assert findings.render_floors(cleared) == (
        "All 1 single-task BERT cells that should train clear both floors.\n"
    )
    mixed = floors_rows(
        {
            ("sst-base", "sst-bilstm"): "clears",
            ("sst-lr1e-6", "majority class"): "unclear",
            ("sst-finetune-none", "majority class"): "below",
        }
    )
    text = findings.render_floors(mixed)
    assert text.startswith("1 of the 2 single-task BERT cells that should train do not clear")
    assert (
        "| `sst-lr1e-6` | majority class | 45.0 | 30.0 | +15.0 [+10.0, +20.0] | unclear |" in text
    )
    assert "| `sst-finetune-none` (expected to fail) | majority class |" in text
    assert "sst-base" not in text.split("\n\n")[1]  # a cleared row is not listed
    mixed.to_csv(tmp_path / "floors.csv", index=False)
    document = "<!-- findings: floors.csv -->\n<!-- /findings -->\n"
    assert findings.update(document, tmp_path, CLAIMS_YAML) == (
        f"<!-- findings: floors.csv -->\n{text}<!-- /findings -->\n"
    )


DOCS = REPO_ROOT / "docs"
INTERVAL = re.compile(r"([+-]?\d+\.\d) \[([+-]?\d+\.\d), ([+-]?\d+\.\d)\]")


@pytest.mark.parametrize("document", [README, DOCS / "findings.md", DOCS / "comparable.md"])
def test_every_generated_block_equals_what_its_csvs_give(document):
    """The README's answer (one row per finding, every shipped scale) and the docs' detail,
    floors and stand-in blocks are what `findings --update` writes from the shipped CSVs."""
    text = document.read_text()
    assert findings.update(text, document.parent, CLAIMS_YAML) == text, (
        f"{document.name}'s generated blocks differ from the shipped CSVs: run "
        "`python -m workflow_src.render.findings --update README.md docs/findings.md`"
    )


def test_the_readme_answers_first_one_row_per_finding_and_stays_short():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) < 200
    answer = findings.ANSWER.search(text)
    assert answer and text.index("## Set up and run") < answer.start()
    assert text.index("```bash") < answer.start() < text.index("## Other ways to run it")
    rows = [line for line in answer["body"].splitlines()[2:] if line.startswith("| ")]
    shipped = pd.read_csv(REPO_ROOT / "reference" / "cpu" / "claims.csv")
    assert len(rows) == shipped.claim.nunique()
    for row, (claim_id, group) in zip(rows, shipped.groupby("claim", sort=False), strict=True):
        assert f"**{group.claim_verdict.iloc[0]}**" in row
        assert "(docs/findings.md#" in row and claim_id in row
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)", text):
        if link not in {"docs/statistics.md", "docs/threat-model.md", "ARCHITECTURE.md"}:
            assert (REPO_ROOT / link).is_file(), link  # those three come from other issues


def test_a_second_shipped_scale_stands_beside_the_first_with_its_own_numbers(tmp_path):
    """Issue 24: each claim's verdict at both scales side by side, each with the key comparison's
    difference and interval; where the second scale lacks that comparison's task (the regime
    trains no Quora), its own key comparison, named."""
    cpu = claims_csv_frame()
    regime = claims_csv_frame(seeds=1)
    regime["difference"] += 10.0
    regime = regime[regime.task != "quora"]
    regime = regime[regime.claim != "bert-beats-bilstm"]
    for preset, frame in (("regime", regime), ("cpu", cpu)):
        (tmp_path / preset).mkdir()
        frame.to_csv(tmp_path / preset / "claims.csv", index=False)
    table = findings.render_answer(tmp_path, CLAIMS_YAML)
    header, _, *rows = [line for line in table.splitlines() if line.startswith("|")]
    assert header.index("`cpu`: verdict") < header.index("`regime`: verdict")
    assert all(row.count(" | ") == 5 for row in rows)
    cpu_views = {v.claim.id: v for v in findings.claim_views(cpu, CLAIMS_YAML)}
    key = cpu_views["lr-1e-6-worst"].key
    at_regime = regime[(regime.claim == "lr-1e-6-worst") & (regime.comparison == key.describe)]
    row = next(r for r in rows if "A learning rate of 1e-6 is the worst" in r)
    cpu_cell, regime_cell = row.split(" | ")[3:5]
    assert cpu_cell.endswith(f": {findings.interval_text(key.interval)}")
    assert "(indicative: 1 seed)" in regime_cell
    interval = at_regime.iloc[0][["difference", "ci_low", "ci_high"]]
    assert regime_cell.endswith(f": {findings.interval_text(tuple(interval))}")
    assert "| not run |" in next(r for r in rows if "beats the BiLSTM" in r)
    assert cpu_views["all-layers-preferred"].key.task == "quora"
    number = cpu_views["all-layers-preferred"].number  # its place in claims.yaml
    assert (
        number == [c.id for c in claims.load_claims(CLAIMS_YAML)].index("all-layers-preferred") + 1
    )
    regime_cell = next(r for r in rows if r.startswith(f"| {number} |")).split(" | ")[4]
    assert "`sts-base > sts-finetune-last2`" in regime_cell  # names the comparison it quotes


def test_a_second_scale_quotes_a_comparison_that_carries_its_own_verdict(tmp_path):
    """Where the first scale's key comparison is inconclusive at the second scale while another
    comparison decides the claim there (the regime's last two layers: SST inconclusive, STS
    contradicted), the second scale's verdict stands beside the comparison that decides it,
    named, not beside a number that does not support it."""
    cpu = claims_csv_frame()
    claim = "last-two-layers-suffice"
    regime = cpu[cpu.task != "quora"].copy()
    cpu_key = {v.claim.id: v for v in findings.claim_views(cpu, CLAIMS_YAML)}[claim].key
    rows = regime.claim == claim
    regime.loc[rows, ["verdict", "claim_verdict"]] = ["inconclusive", "contradicted"]
    deciding = rows & (regime.comparison != cpu_key.describe)
    regime.loc[deciding.idxmax(), "verdict"] = "contradicted"
    for preset, frame in (("regime", regime), ("cpu", cpu)):
        (tmp_path / preset).mkdir()
        frame.to_csv(tmp_path / preset / "claims.csv", index=False)
    number = {v.claim.id: v.number for v in findings.claim_views(cpu, CLAIMS_YAML)}[claim]
    row = next(
        r
        for r in findings.render_answer(tmp_path, CLAIMS_YAML).splitlines()
        if r.startswith(f"| {number} |")
    )
    regime_cell = row.split(" | ")[4]
    named = findings.comparison_label(regime.loc[deciding.idxmax(), "comparison"])
    assert regime_cell.startswith("**contradicted**: ") and f"`{named}`" in regime_cell


def test_the_answer_names_the_findings_a_second_scale_decides_otherwise(tmp_path):
    cpu = claims_csv_frame()
    regime = cpu[cpu.claim != "bert-beats-bilstm"].copy()
    flipped = regime.claim == "lr-1e-5-best-sst-sts"
    before = cpu[cpu.claim == "lr-1e-5-best-sst-sts"].claim_verdict.iloc[0]
    after = "inconclusive" if before != "inconclusive" else "contradicted"
    regime.loc[flipped, "claim_verdict"] = after
    for preset, frame in (("regime", regime), ("cpu", cpu)):
        (tmp_path / preset).mkdir()
        frame.to_csv(tmp_path / preset / "claims.csv", index=False)
    number = {v.claim.id: v.number for v in findings.claim_views(cpu, CLAIMS_YAML)}[
        "lr-1e-5-best-sst-sts"
    ]
    sentence = findings.render_answer(tmp_path, CLAIMS_YAML).rstrip().splitlines()[-1]
    assert sentence == (
        f"Of the {regime.claim.nunique()} findings decided at both `cpu` and `regime`, 1 is "
        f"decided otherwise: {number} ({before} at `cpu`, {after} at `regime`)."
    )
    regime.assign(seeds=1, claim_verdict=cpu.set_index("claim").claim_verdict.groupby(level=0)
                  .first().reindex(regime.claim).values).to_csv(
        tmp_path / "regime" / "claims.csv", index=False)  # fmt: skip
    sentence = findings.render_answer(tmp_path, CLAIMS_YAML).rstrip().splitlines()[-1]
    assert sentence.endswith("indicative only (1 seed), none is decided otherwise.")
    (tmp_path / "regime" / "claims.csv").unlink()
    assert "decided at both" not in findings.render_answer(tmp_path, CLAIMS_YAML)


def test_every_interval_the_prose_quotes_is_a_shipped_row():
    """The readings in docs/ quote differences with their intervals: each is one row of a
    shipped scale's claims.csv or floors.csv (sign aside: 'ahead by 3.9 [1.7, 6.1]')."""
    shipped = set()
    scales = sorted(path.parent for path in (REPO_ROOT / "reference").glob("*/claims.csv"))
    for path in (scale / name for scale in scales for name in ("claims.csv", "floors.csv")):
        frame = pd.read_csv(path)
        for row in frame.dropna(subset=["difference"]).itertuples():
            values = (row.difference, row.ci_low, row.ci_high)
            shipped.add(tuple(sorted(round(abs(v), 1) for v in values)))
    quoted = []
    for name in ("findings.md", "comparable.md"):
        text = (DOCS / name).read_text()
        text = text.split("## Reading these verdicts")[-1]  # past the generated blocks
        quoted += [tuple(sorted(round(abs(float(v)), 1) for v in m)) for m in
                   INTERVAL.findall(text)]  # fmt: skip
    assert quoted and [q for q in quoted if q not in shipped] == []


def test_quora_numbers_say_they_come_from_the_standin():
    text = findings.render_standin(REPO_ROOT / "reference" / "cpu" / "metrics.csv")
    assert "stand-in cut from quora-dev" in text
    assert "stand-in cut from quora-dev" in README.read_text()


def test_inline_quotes_name_one_shipped_row_or_a_claims_verdict(tmp_path):
    claims_csv_frame().to_csv(tmp_path / "claims.csv", index=False)
    frame = claims_csv_frame()
    row = frame[frame.claim == "lr-1e-6-worst"].iloc[1]
    assert findings.quote("claims.csv lr-1e-6-worst 2", tmp_path, CLAIMS_YAML) == (
        f"{row.difference:+.1f} [{row.ci_low:+.1f}, {row.ci_high:+.1f}]"
    )
    magnitude = findings.quote("claims.csv lr-1e-6-worst 2 abs", tmp_path, CLAIMS_YAML)
    assert not magnitude.startswith(("+", "-")) and "-" not in magnitude
    assert findings.quote("claims.csv lr-1e-6-worst verdict", tmp_path, CLAIMS_YAML) == (
        row.claim_verdict
    )
    with pytest.raises(findings.FindingsError, match="no row for the quote"):
        findings.quote("claims.csv lr-1e-6-worst 99", tmp_path, CLAIMS_YAML)
    document = "Seen: <!--q claims.csv lr-1e-6-worst 2-->stale<!--/q--> points.\n"
    updated = findings.update(document, tmp_path, CLAIMS_YAML)
    assert "stale" not in updated and updated.endswith("<!--/q--> points.\n")
