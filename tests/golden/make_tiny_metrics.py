"""Regenerate tests/golden/tiny_metrics_*.json: the metric values of tiny cells, fp32 on CPU.

    git worktree add /tmp/before <commit>            # the code whose numbers are the reference
    python tests/golden/make_tiny_metrics.py --code /tmp/before
    git worktree remove /tmp/before

Each case trains once with `python -m workflow_src.train` run inside `--code` (any commit whose
training command takes --settings-json, --seed and --run-dir), on the real CS224N files of
../shared/data/cs224n (or --data-dir), and stores the case's settings (data_dir aside), its seed,
the commit it was made at and the run's metric values (tests/test_golden_metrics.py: `values`).
The settings are those of the grid's cell at the `tiny` preset, with precision fp32, device cpu
and the case's few overrides (to stay fast); cells with Quora keep only sst and sts, because
the shipped data has no quora-train (the download makes a stand-in, which this fixture should
not depend on). tests/test_golden_metrics.py trains the same settings with the code of the
checkout and asserts the same values. Each file names the commit it was made at: sst-base and
multitask-additive at 9f46182, which trained the shipped cpu reproduction (e88ab40, the last
commit before the package moved into one folder per stage, gives the same values); the SMART
case at 22b4b8b (after issue 23's SMART fix, before train/loop.py was split).

Regenerate only when a change is meant to change the numbers (say so in the commit), never to
make a refactor pass: a refactor must leave them alone. After such a change, from the commit
that makes it (a change to SMART moves the SMART case, and only it):

    python tests/golden/make_tiny_metrics.py --code . --only multitask-smart
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.fault_injection.kill_resume import command  # noqa: E402
from tests.golden.tiny_cases import CASES, case_settings, golden_path, values  # noqa: E402


def train(code: Path, settings: dict, seed: int, run_dir: Path) -> dict:
    """metrics.json of one run of the training command of the checkout at `code`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(command(settings, run_dir, seed), cwd=code, check=True, env=env)
    return json.loads((run_dir / "metrics.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, required=True, help="checkout whose code trains")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "cs224n")
    parser.add_argument("--only", nargs="*", help="case names to regenerate (default: all)")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=args.code, capture_output=True, text=True, check=True
    ).stdout.strip()
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        settings = case_settings(case, REPO / "config.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            run_settings = {**settings, "data_dir": str(args.data_dir.resolve())}
            metrics = train(args.code.resolve(), run_settings, case.seed, Path(tmp) / "run")
        golden = {
            "case": case.name,
            "note": case.note,
            "made_at_commit": commit,
            "seed": case.seed,
            "settings": settings,
            "values": values(metrics),
        }
        golden_path(case.name).write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")
        print(f"wrote {golden_path(case.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
