"""The README's findings, written from a shipped claims.csv and floors.csv.

    python -m workflow_src.render.findings reference/cpu/claims.csv    print the claims' table
    python -m workflow_src.render.findings reference/cpu/floors.csv    print the floors' summary
    python -m workflow_src.render.findings --update README.md          rewrite the README's blocks

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
import re
import sys
from pathlib import Path

import pandas as pd

from workflow_src.analysis import floors
from workflow_src.analysis.claims import CSV_COLUMNS, MIN_SEEDS, load_claims
from workflow_src.atomic import write_text_atomic

BLOCK = re.compile(
    r"(?P<open><!-- findings: (?P<path>\S+) -->\n)(?P<body>.*?)(?P<close><!-- /findings -->)",
    re.DOTALL,
)
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
    return read_csv(path, "claims.csv", CSV_COLUMNS)


def comparison_label(comparison: str) -> str:
    """`sst-base:sst > sst-lr1e-4:sst + 0` -> `sst-base > sst-lr1e-4`: a term's task is left out
    where its cell's name begins with it, and kept on the multi-task cells
    (`multitask-smart:sts`). The pipes of an absolute value are escaped, since a markdown table
    would read them as column breaks."""
    label = re.sub(r"\b(\w+)(-[^\s:|]+):\1\b", r"\1\2", comparison)
    return re.sub(r" [+-] 0$", "", label).replace("|", "\\|")


def comparison_cell(row) -> str:
    if pd.isna(row.difference):
        return f"`{comparison_label(row.comparison)}`: {row.test or 'no runs'}"
    return (
        f"`{comparison_label(row.comparison)}`: {row.difference:+.1f} "
        f"[{row.ci_low:+.1f}, {row.ci_high:+.1f}], {row.verdict}"
    )


def claim_verdict(rows: pd.DataFrame) -> str:
    verdict = str(rows.claim_verdict.iloc[0])
    seeds = int(rows.seeds.min())
    if seeds < MIN_SEEDS:
        return f"{verdict} (indicative: {seeds} seed{'s' if seeds != 1 else ''})"
    return f"**{verdict}**"


def render(frame: pd.DataFrame, claims_yaml: str | Path) -> str:
    """The markdown table, one row per claim of `claims_yaml` that the CSV holds."""
    claims = {claim.id: claim for claim in load_claims(claims_yaml)}
    unknown = sorted(set(frame.claim) - set(claims))
    if unknown:
        raise FindingsError(f"claims.csv names claims that {claims_yaml} lacks: {unknown}")
    lines = []
    for claim_id, claim in claims.items():
        rows = frame[frame.claim == claim_id]
        if rows.empty:
            continue
        comparisons = "<br>".join(comparison_cell(row) for row in rows.itertuples())
        lines.append(f"| {claim.text} | {comparisons} | {claim_verdict(rows)} |\n")
    return HEADER + "".join(lines)


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


def render_file(path: str | Path, claims_yaml: str | Path) -> str:
    """What a block naming `path` holds: the claims' table or the floors' summary."""
    if Path(path).name == "floors.csv":
        return render_floors(read_csv(path, "floors.csv", floors.COLUMNS))
    return render(read_claims_csv(path), claims_yaml)


def update(document: str, root: Path, claims_yaml: str | Path) -> str:
    """`document` with every findings block rewritten from the CSV it names."""

    def rewrite(match: re.Match) -> str:
        return match["open"] + render_file(root / match["path"], claims_yaml) + match["close"]

    updated, blocks = BLOCK.subn(rewrite, document)
    if not blocks:
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
        help="instead, rewrite each findings block of this file from the claims.csv it names",
    )
    parser.add_argument("--claims", default="report/claims.yaml", help="claims.yaml")
    args = parser.parse_args(argv)
    if (args.csv is None) == (args.update is None):
        parser.error("give either a claims.csv or --update MARKDOWN")
    try:
        if args.update:
            path = Path(args.update)
            write_text_atomic(path, update(path.read_text(), path.parent, args.claims))
        else:
            sys.stdout.write(render_file(args.csv, args.claims))
    except (FindingsError, OSError) as error:
        print(f"findings: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
