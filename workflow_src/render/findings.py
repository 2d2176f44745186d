"""The README's findings, written from a shipped claims.csv and floors.csv.

    python -m workflow_src.render.findings reference/cpu/claims.csv    print the claims' table
    python -m workflow_src.render.findings reference/cpu/floors.csv    print the floors' summary
    python -m workflow_src.render.findings --update README.md docs/*.md  rewrite the blocks

The README's answer, between

    <!-- answer: reference -->
    <!-- /answer -->

is one row per paper finding: its key comparison (at the first scale, the first comparison whose
verdict is the claim's), then side by side at each shipped scale (every reference/<preset>/
claims.csv under the folder the marker names, cpu first) the claim's verdict with that
comparison's difference and 95% interval, and a link to the detail (docs/findings.md, where the
per-comparison blocks below live); under the table, for each further scale, a sentence naming the
findings it decides otherwise than the first.

From claims.csv, one row per claim of report/claims.yaml, in its order: the paper's finding in
words, each comparison's difference in percentage points with its 95% interval (dev sample and
seeds, as workflow_src.analysis.claims computes it) and the comparison's verdict, then the claim's
verdict. From floors.csv (workflow_src.analysis.floors), whether every cell that should train clears
the BiLSTM and the majority class, and the rows of those that do not. With `--update`, each
block between two markers

    <!-- findings: reference/cpu/claims.csv -->
    <!-- /findings -->

is replaced by what this module writes from the CSV it names, and tests/test_findings.py
checks that README.md's blocks are, so the README cannot drift from the shipped runs.
No torch: it reads CSV and YAML only.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

from workflow_src.analysis import floors
from workflow_src.analysis.claims import load_claims
from workflow_src.atomic import write_text_atomic
from workflow_src.render import verdicts
from workflow_src.render.verdicts import FLOOR_COLUMNS, ClaimView, ComparisonView, flag

BLOCK = re.compile(
    r"(?P<open><!-- findings: (?P<path>\S+) -->\n)(?P<body>.*?)(?P<close><!-- /findings -->)",
    re.DOTALL,
)
DETAIL_BLOCK = re.compile(
    r"(?P<open><!-- detail: (?P<path>\S+)(?: (?P<scale>\w+))? -->\n)(?P<body>.*?)"
    r"(?P<close><!-- /detail -->)",
    re.DOTALL,
)
ANSWER = re.compile(
    r"(?P<open><!-- answer: (?P<path>\S+) -->\n)(?P<body>.*?)(?P<close><!-- /answer -->)",
    re.DOTALL,
)
# an inline quote of one shipped row: <!--q PATH CLAIM N [abs|verdict]-->...<!--/q--> (the
# claim's N-th comparison, or its verdict), or <!--q PATH CELL FLOOR [abs]-->...<!--/q--> in a
# floors.csv (FLOOR with "_" for spaces: majority_class)
QUOTE = re.compile(r"(?P<open><!--q (?P<spec>[^>]+?)-->)(?P<body>.*?)(?P<close><!--/q-->)", re.S)
SCALE_ORDER = ("cpu", "regime", "paper")  # smaller scales first; any other after, by name
DETAIL = "docs/findings.md"
HEADER = (
    "| the paper's finding | comparisons: difference in points [95% interval], verdict | claim |\n"
    "|---|---|---|\n"
)


class FindingsError(ValueError):
    """A claims.csv or a README block that cannot be rendered."""


def read_csv(path: str | Path, kind: str, columns: list[str]) -> pd.DataFrame:
    """A CSV with `columns` (claims.csv or floors.csv); another file is refused, naming it."""
    frame = pd.read_csv(path)
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise FindingsError(f"{path}: not a {kind} (missing columns {missing})")
    return frame


def read_claims_csv(path: str | Path) -> pd.DataFrame:
    try:
        return verdicts.read_claims_csv(path)
    except verdicts.VerdictsError as error:
        raise FindingsError(str(error)) from error


def claim_views(
    frame: pd.DataFrame, claims_yaml: str | Path, where: str = "claims.csv", strict: bool = True
) -> list[ClaimView]:
    """The claims a claims.csv holds, as the report reads them (workflow_src.render.verdicts), in
    claims.yaml's order; not `strict` (a further scale), rows claims.yaml lacks are left out."""
    try:
        return verdicts.claim_views(frame, load_claims(claims_yaml), where, strict)
    except verdicts.VerdictsError as error:
        raise FindingsError(str(error)) from error


def comparison_label(comparison: str) -> str:
    """`sst-base:sst > sst-lr1e-4:sst + 0` -> `sst-base > sst-lr1e-4`: a term's task is left out
    where its cell's name begins with it, and kept on the multi-task cells
    (`multitask-smart:sts`). The pipes of an absolute value are escaped, since a markdown table
    would read them as column breaks."""
    label = re.sub(r"\b(\w+)(-[^\s:|]+):\1\b", r"\1\2", comparison)
    return re.sub(r" [+-] 0$", "", label).replace("|", "\\|")


def comparison_cell(comparison: ComparisonView) -> str:
    label = f"`{comparison_label(comparison.describe)}`"
    if comparison.missing:
        return f"{label}: {comparison.test or 'no runs'}"
    return f"{label}: {interval_text(comparison.interval)}, {comparison.verdict}"


def verdict_text(view: ClaimView) -> str:
    """A claim's verdict: bold when decided on MIN_SEEDS seeds or more, else marked indicative;
    marked fragile where the analysis says a small change of it would flip the verdict."""
    seeds = f"{view.seeds} seed{'s' if view.seeds != 1 else ''}"
    text = f"{view.verdict} (indicative: {seeds})" if view.indicative else f"**{view.verdict}**"
    return text + (" (fragile)" if view.fragile else "")


def render(frame: pd.DataFrame, claims_yaml: str | Path) -> str:
    """The markdown table, one row per claim of `claims_yaml` that the CSV holds."""
    return HEADER + "".join(
        f"| {view.claim.text} | {'<br>'.join(map(comparison_cell, view.comparisons))} "
        f"| {verdict_text(view)} |\n"
        for view in claim_views(frame, claims_yaml)
    )


def render_floors(frame: pd.DataFrame) -> str:
    """floors.summary, then a table of every row that does not clear its floor."""
    text = floors.summary(frame) + "\n"
    short = frame[frame.verdict != floors.CLEARS]
    if short.empty:
        return text
    lines = [
        f"| `{row.cell}`{' (expected to fail)' if row.expected_to_fail else ''} | {row.floor} "
        f"| {row.value:.1f} | {row.floor_value:.1f} "
        f"| {row.difference:+.1f} [{row.ci_low:+.1f}, {row.ci_high:+.1f}] | {row.verdict} |\n"
        for row in short.itertuples()
    ]
    return (
        text
        + "\n| cell | floor | cell's value | floor's value | difference [95% interval] | verdict |\n"
        + "|---|---|---|---|---|---|\n"
        + "".join(lines)
    )


def shipped_scales(folder: Path) -> dict[str, Path]:
    """preset -> claims.csv of every reproduction shipped under `folder`, cpu first."""
    found = {path.parent.name: path for path in sorted(folder.glob("*/claims.csv"))}
    rank = {name: i for i, name in enumerate(SCALE_ORDER)}
    return {name: found[name] for name in sorted(found, key=lambda n: (rank.get(n, 99), n))}


def scale_cell(view: ClaimView | None, describe: str) -> str:
    """A claim at one scale: its verdict, then the difference and interval of the comparison
    `describe` (the key comparison at the first scale), or, where this scale has no number for it
    (a task it does not train) or that comparison does not carry its verdict here, of its own key
    comparison, named."""
    if view is None:
        return "not run"
    shown = view.quoted(describe)
    if shown is None or shown.missing:
        return f"{verdict_text(view)}: no runs"
    named = "" if shown.describe == describe else f"`{comparison_label(shown.describe)}` "
    return f"{verdict_text(view)}: {named}{interval_text(shown.interval)}"


def comparison_line(comparison: ComparisonView) -> str:
    """One comparison of the detail: difference, interval, verdict, test, and the newer
    columns where the analysis wrote them (fragile, seeds needed to decide)."""
    text = f"- {comparison_cell(comparison)}".replace("\\|", "|")  # no table: no pipe to escape
    if not comparison.missing and not math.isnan(comparison.p_value):
        text += f" (p = {comparison.p_value:.3g}, {comparison.test})"
    if comparison.fragile:
        text += "; fragile"
    if comparison.seeds_needed:
        text += f"; seeds to decide: {comparison.seeds_needed}"
    return text + "\n"


def render_detail(frame: pd.DataFrame, claims_yaml: str | Path, scale: str | None = None) -> str:
    """One section per claim (numbered as the README's answer): the paper's sentence, the
    verdict, what a partial grid left out of it, and every comparison. A second scale's detail
    in the same document (`<!-- detail: PATH SCALE -->`) names its scale in each heading, so
    that its anchors differ from the first's (`#7-last-two-layers-suffice-at-regime`)."""
    heading_scale = f" at `{scale}`" if scale else ""
    parts = []
    for view in claim_views(frame, claims_yaml):
        claim, number = view.claim, view.number
        quote = f' The paper: "{claim.quote}"' if claim.quote else ""
        source = f" ({claim.source})" if claim.source else ""
        scope = f"{view.scope}\n\n" if view.scope else ""
        parts.append(
            f"### {number} {claim.id}{heading_scale}\n\n{claim.text}{quote}{source}\n\n"
            f"Verdict: {verdict_text(view)}, {view.seeds} seeds.\n\n{scope}"
            + "".join(map(comparison_line, view.comparisons))
            + "\n"
        )
    return "".join(parts)


def render_answer(folder: Path, claims_yaml: str | Path, detail: str = DETAIL) -> str:
    """One row per paper finding: its key comparison, and at each shipped scale side by side the
    claim's verdict with that comparison's difference and interval."""
    paths = shipped_scales(folder)
    if not paths:
        raise FindingsError(f"{folder}: no shipped reproduction (no */claims.csv)")
    scales = {
        name: claim_views(read_claims_csv(path), claims_yaml, str(path), strict=i == 0)
        for i, (name, path) in enumerate(paths.items())
    }
    names = list(scales)
    lines = [
        f"| # | the paper's finding | key comparison (at `{names[0]}`) | "
        + " | ".join(f"`{name}`: verdict, difference in points [95% interval]" for name in names)
        + " | |\n",
        "|---|---|---|" + "---|" * len(names) + "---|\n",
    ]
    by_id = {name: {view.claim.id: view for view in views} for name, views in scales.items()}
    for view in scales[names[0]]:
        claim, number, key = view.claim, view.number, view.key.describe if view.key else ""
        cells = " | ".join(scale_cell(by_id[name].get(claim.id), key) for name in names)
        lines.append(
            f"| {number} | {claim.text} | `{comparison_label(key)}` | {cells} "
            f"| [detail]({detail}#{number}-{claim.id}) |\n"
        )
    changes = verdicts.decided_otherwise(scales)
    return "".join(lines) + "".join(f"\n{sentence}\n" for sentence in changes)


def render_standin(path: str | Path) -> str:
    """From a metrics.csv: how many runs trained Quora on the stand-in cut from quora-dev."""
    runs = pd.read_csv(path)
    if "quora_train_standin" not in runs.columns:
        raise FindingsError(f"{path}: not a metrics.csv (no quora_train_standin column)")
    quora = runs[runs["tasks"].astype(str).str.contains("quora")]
    standin = quora[quora["quora_train_standin"].map(flag)]
    if standin.empty:
        return f"All {len(quora)} runs that train Quora trained on quora-train.csv.\n"
    dev = sorted({int(n) for n in standin["dev_examples_quora"].dropna()})
    return (
        f"{len(standin)} of the {len(quora)} runs that train Quora trained it on a stand-in cut "
        f"from quora-dev (no quora-train.csv in the offline mirror; issue 23), and were scored "
        f"on {', '.join(f'{n:,}' for n in dev)} other quora-dev pairs: their Quora numbers "
        "measure the method on that stand-in, not on the paper's Quora train.\n"
    )


def render_stale(path: str | Path) -> str:
    """From a PROVENANCE.json: which shipped cells were trained by code that gives other metrics
    today (reference/training_commits.yaml), so their numbers and verdicts await a retrain."""
    training = json.loads(Path(path).read_text(encoding="utf-8"))["training"]
    stale = [
        f"`{cell}`, trained at {entry['commit'][:7]}: {why}"
        for entry in training.get("commits", [])
        for cell, why in entry.get("stale_cells", {}).items()
    ]
    if not stale:
        return (
            "Every shipped run was trained by today's training code, or by earlier code that a "
            "test shows gives the same metrics.\n"
        )
    return (
        "Stale until retrained (`PROVENANCE.json`): "
        + "; ".join(stale)
        + " Its numbers, and the verdicts that use them, are those of the earlier code.\n"
    )


def interval_text(interval: tuple[float, float, float], magnitude: bool = False) -> str:
    """`+4.9 [+2.7, +7.1]` from (difference, low, high), or with `magnitude` the size of the
    difference and its interval, unsigned (`3.9 [1.7, 6.1]` for -3.9 [-6.1, -1.7]), for prose
    that names the direction."""
    difference, low, high = interval
    if not magnitude:
        return f"{difference:+.1f} [{low:+.1f}, {high:+.1f}]"
    sign = -1 if difference < 0 else 1
    low, high = sorted(sign * v for v in (low, high))
    return f"{abs(difference):.1f} [{low:.1f}, {high:.1f}]"


def quote(spec: str, root: Path, claims_yaml: str | Path) -> str:
    """What an inline quote marker names, from the shipped CSV (see QUOTE)."""
    path, key, which, *mode = spec.split()
    frame = pd.read_csv(root / path)
    if Path(path).name == "floors.csv":
        rows = frame[(frame.cell == key) & (frame.floor == which.replace("_", " "))]
    else:
        rows = frame[frame.claim == key]
        if which == "verdict":
            if rows.empty:
                raise FindingsError(f"{path}: no claim {key!r} (quoted as {spec!r})")
            return str(rows.claim_verdict.iloc[0])
        rows = rows.iloc[int(which) - 1 : int(which)] if which.isdigit() else rows.iloc[:0]
    if rows.empty:
        raise FindingsError(f"{path}: no row for the quote {spec!r}")
    row = rows.iloc[0]
    return interval_text((row.difference, row.ci_low, row.ci_high), magnitude=mode == ["abs"])


def render_file(path: str | Path, claims_yaml: str | Path) -> str:
    """What a block naming `path` holds: the claims' table or the floors' summary."""
    if Path(path).name == "metrics.csv":
        return render_standin(path)
    if Path(path).name == "PROVENANCE.json":
        return render_stale(path)
    if Path(path).name == "floors.csv":
        return render_floors(read_csv(path, "floors.csv", FLOOR_COLUMNS))
    return render(read_claims_csv(path), claims_yaml)


def update(document: str, root: Path, claims_yaml: str | Path) -> str:
    """`document` with every findings block rewritten from the CSV it names."""

    def rewrite(match: re.Match) -> str:
        return match["open"] + render_file(root / match["path"], claims_yaml) + match["close"]

    def answer(match: re.Match) -> str:
        return match["open"] + render_answer(root / match["path"], claims_yaml) + match["close"]

    updated, blocks = BLOCK.subn(rewrite, document)

    def detail(match: re.Match) -> str:
        frame = read_claims_csv(root / match["path"])
        sections = render_detail(frame, claims_yaml, match["scale"])
        return match["open"] + sections + match["close"]

    def inline(match: re.Match) -> str:
        return match["open"] + quote(match["spec"], root, claims_yaml) + match["close"]

    updated, answers = ANSWER.subn(answer, updated)
    updated, details = DETAIL_BLOCK.subn(detail, updated)
    updated, quotes = QUOTE.subn(inline, updated)
    if not blocks + answers + details + quotes:
        raise FindingsError("no '<!-- findings: PATH -->' ... '<!-- /findings -->' block found")
    return updated


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "csv", nargs="?", help="print what a block of this claims.csv or floors.csv holds"
    )
    parser.add_argument(
        "--update",
        metavar="MARKDOWN",
        nargs="+",
        help="instead, rewrite each generated block of these files from the CSVs it names",
    )
    parser.add_argument("--claims", default="report/claims.yaml", help="claims.yaml")
    args = parser.parse_args(argv)
    if (args.csv is None) == (args.update is None):
        parser.error("give either a claims.csv or --update MARKDOWN")
    try:
        for path in map(Path, args.update or []):
            write_text_atomic(path, update(path.read_text(), path.parent, args.claims))
        if not args.update:
            sys.stdout.write(render_file(args.csv, args.claims))
    except (FindingsError, OSError) as error:
        print(f"findings: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
