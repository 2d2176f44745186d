"""Where one training job's time goes: start-up to its first update, tokenisation, training,
evaluation, checkpoints, writing.

    python benchmarks/job_phases.py --data-dir /tmp/perf/data/cs224n            # sst-base, quick
    python benchmarks/job_phases.py --cell quora-base --repeats 3 --data-dir DIR

Runs `python -m workflow_src.train` (the command the DAG runs) in a child process, with the
cell's settings at the chosen preset (grid.cell_settings, as the rule passes them), and times
named phases in that child by wrapping the functions the run calls (no change to the code under
test). Each phase is reported as wall seconds and CPU seconds (time.process_time of the job):
on a busy shared machine the CPU seconds are the figure to compare, wall includes the waits
for a core. "first update" is the moment the optimiser's first step returns, from the start
of the process (the interpreter's own start-up included: the child is timed from fork).

Phases (the child records an event at each boundary; a phase is the time between two):
  interpreter     fork -> the first line of the child (Python start-up)
  imports         modules the job imports before it touches data (torch, transformers, ...)
  data            reading and checking the CSVs (data.prepare.load_data)
  tokenizer       loading the tokenizer;  weights: building the model (encoder weights)
  tokenise        tokenising every split, or with --tokens-dir reading the DAG's tokens files
                  (rules/tokens.smk) and taking the job's rows from them
  to 1st update   what remains until the first optimiser step (set-up, resume check, 1 step)
  training        the other updates, writing metrics and predictions, exit
  evaluation      dev metrics each epoch;  checkpoints: writing/removing per-epoch checkpoints
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (module, function, phase): wrapped in the child wherever the module defines the function.
WRAPPED = (
    ("workflow_src.data.prepare", "load_data", "data"),
    ("workflow_src.data.prepare", "load_tokenized", "tokenise"),
    ("workflow_src.train.loop", "evaluate", "evaluation"),
    ("workflow_src.data.encoders", "load_tokenizer", "tokenizer"),
    ("workflow_src.train.model", "load_transformer", "weights"),
    ("workflow_src.data.batching", "tokenize_split", "tokenise"),
    ("workflow_src.train.checkpoint", "save", "checkpoints"),
    ("workflow_src.train.checkpoint", "remove", "checkpoints"),
)
PHASES = (
    "interpreter",
    "imports",
    "data",
    "tokenizer",
    "weights",
    "tokenise",
    "to 1st update",
    "training",
    "evaluation",
    "checkpoints",
)


def child(argv: list[str]) -> int:
    """Run the training command with phase timers; write the events as JSON to --events."""
    wall0, cpu0 = time.time(), time.process_time()
    events_path = Path(argv[argv.index("--events") + 1])
    train_argv = argv[argv.index("--") + 1 :]
    spans: list[tuple[str, float, float, float, float]] = []  # phase, wall/cpu start, end
    first_update: list[tuple[float, float]] = []
    depth = [0]  # only the outermost wrapped call counts (one may call another)

    import importlib.util

    def wrap(module, name: str, phase: str) -> None:
        inner = getattr(module, name)

        def timed(*args, **kwargs):
            depth[0] += 1
            w, c = time.time(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spans.append((phase, w, c, time.time(), time.process_time()))

        setattr(module, name, timed)

    def on_import(name: str, module) -> None:
        for mod_name, func, phase in WRAPPED:
            if mod_name == name and hasattr(module, func):
                wrap(module, func, phase)
        torch = sys.modules.get("torch")
        if torch is not None and not first_update and not getattr(on_import, "hooked", False):
            on_import.hooked = True

            def step_hook(optimizer, args, kwargs):
                if not first_update:
                    first_update.append((time.time(), time.process_time()))

            from torch.optim.optimizer import register_optimizer_step_post_hook

            register_optimizer_step_post_hook(step_hook)

    class Finder:
        """Wraps a watched module's functions right after the module is executed (the run
        imports its torch-side modules lazily, so they cannot be wrapped beforehand)."""

        def __init__(self):
            self.watched = {m for m, _, _ in WRAPPED}

        def find_spec(self, name, path=None, target=None):
            if name not in self.watched:
                return None
            self.watched.discard(name)
            spec = importlib.util.find_spec(name)  # the other finders (this one now declines)
            original = spec.loader.exec_module

            def exec_module(module):
                original(module)
                on_import(name, module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())
    sys.path.insert(0, os.getcwd())  # as `python -m workflow_src.train` from the repository
    import workflow_src.train.loop as train

    sys.argv = ["workflow_src.train.loop", *train_argv]
    code = train.main(train_argv)
    events_path.write_text(
        json.dumps(
            {
                "child_start": (wall0, cpu0),
                "spans": spans,
                "first_update": first_update[0] if first_update else None,
                "end": (time.time(), time.process_time()),
                "code": code,
            }
        )
    )
    return code


def phase_split(events: dict, fork_wall: float) -> dict[str, tuple[float, float]]:
    """Phase -> (wall s, CPU s) from the child's events (see the module docstring)."""
    spans = events["spans"]
    (w0, c0), (wend, cend) = events["child_start"], events["end"]
    fw, fc = events["first_update"]
    out = {phase: [0.0, 0.0] for phase in PHASES}
    out["interpreter"] = [w0 - fork_wall, c0]
    setup = [s for s in spans if s[3] <= fw]
    later = [s for s in spans if s[3] > fw]
    for phase, ws, cs, we, ce in spans:
        out[phase][0] += we - ws
        out[phase][1] += ce - cs
    data_w = min((s[1] for s in spans), default=fw)
    data_c = min((s[2] for s in spans), default=fc)
    out["imports"] = [data_w - w0, data_c - c0]
    out["to 1st update"] = [
        fw - data_w - sum(s[3] - s[1] for s in setup),
        fc - data_c - sum(s[4] - s[2] for s in setup),
    ]
    out["training"] = [
        wend - fw - sum(s[3] - s[1] for s in later),
        cend - fc - sum(s[4] - s[2] for s in later),
    ]
    out["first update at"] = [fw - fork_wall, fc]
    out["total"] = [wend - fork_wall, cend]
    return {k: tuple(v) for k, v in out.items()}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="sst-base")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="median over this many jobs")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "cs224n")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument(
        "--tokens-dir",
        type=Path,
        help="the preset's tokens folder (results/tokens/<preset>): the job reads its tasks' "
        "files as the DAG's job does",
    )
    args = parser.parse_args(argv)

    import yaml

    sys.path.insert(0, str(ROOT))
    from workflow_src.spec import grid

    config = yaml.safe_load(args.config.read_text())
    config["preset"] = args.preset
    settings = grid.cell_settings(config, args.cell)
    settings["data_dir"] = str(args.data_dir.resolve())
    results = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="mtb-phases-") as tmp:
            events = Path(tmp) / "events.json"
            cmd = [sys.executable, __file__, "--child", "--events", str(events), "--"]
            cmd += ["--settings-json", json.dumps(settings), "--seed", str(args.seed)]
            cmd += ["--run-dir", str(Path(tmp) / "run")]
            if args.tokens_dir:
                from workflow_src.data.tokens import encoding
                from workflow_src.spec.layout import tokens_file

                joint = settings.get("pair_encoding") == "joint"
                folder = args.tokens_dir.resolve()
                cmd += ["--tokens"] + [
                    f"{t}={tokens_file(folder, t, encoding(t, joint))}" for t in settings["tasks"]
                ]
            fork = time.time()
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"job_phases: the job failed:\n{done.stderr[-3000:]}")
            results.append(phase_split(json.loads(events.read_text()), fork))
    print(
        f"cell {args.cell} preset {args.preset} seed {args.seed}; median of {args.repeats}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'phase':<16}{'wall s':>9}{'CPU s':>9}")
    for phase in (*PHASES, "first update at", "total"):
        wall = statistics.median(r[phase][0] for r in results)
        cpu = statistics.median(r[phase][1] for r in results)
        print(f"{phase:<16}{wall:9.2f}{cpu:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
