"""What a caption says about the runs behind the numbers: preset, encoder, seeds, and caveats.

Both renderers (`tables` for LaTeX, `report` for HTML) take the same options (add_context_options)
and build one Context from them; its notes say which numbers are comparable with the paper's.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from workflow_src.analysis.aggregate import STAGES

PAPER_ENCODER = "bert-base-uncased"
ENCODER_NAMES = {"embedded": "all-MiniLM-L6-v2 (embedded)"}
MINILM_NOTE = (
    "The encoder is all-MiniLM-L6-v2, not the paper's bert-base-uncased. Trained at the paper's "
    "own epochs and learning rate it lands near the paper on SST (47.4 against 52.04) and with "
    "the concatenation STS head (39.4 against 39.15), so those numbers are comparable in size; "
    "its sentence-pair pre-training (Quora duplicates among its data; an untrained cosine head "
    "already gives STS r about 0.84) makes its Quora and cosine-head STS numbers measure that "
    "pre-training, not comparable (benchmarks/CALIBRATION.md)."
)
OTHER_ENCODER_NOTE = "The encoder differs from the paper's bert-base-uncased."
STANDIN_NOTE = "Quora train was a stand-in cut from quora-dev (data/cs224n/PROVENANCE.json says which rows); the paper trained on about 141,000 pairs, so Quora scores are not comparable to the paper's."
STAGE_WORDS = {"best": "best-epoch dev metrics", "final": "last-epoch dev metrics"}


@dataclass(frozen=True)
class Context:
    """What a caption says about the reproduction behind the numbers."""

    preset: str
    encoder: str
    seeds: tuple[int, ...]
    epoch_scale: float = 1.0
    stage: str = "best"
    quora_standin: bool = False

    def encoder_name(self) -> str:
        return ENCODER_NAMES.get(self.encoder, self.encoder)

    def encoder_note(self) -> str | None:
        if self.encoder == PAPER_ENCODER:
            return None
        return MINILM_NOTE if self.encoder == "embedded" else OTHER_ENCODER_NOTE

    def scale_note(self) -> str | None:
        """Fewer epochs than the paper's: what the numbers can be set beside."""
        if self.epoch_scale >= 1:
            return None
        return (
            f"Trained for {self.epoch_scale:g} x the paper's epochs: trained numbers sit below "
            "what the same encoder reaches at the paper's epochs (benchmarks/CALIBRATION.md "
            "measures by how much), so compare cells with each other, not with the paper's values."
        )


def add_context_options(parser: argparse.ArgumentParser) -> None:
    """The options both renderers (tables, report) take: the grid, the paper's numbers, and
    what the captions say about the runs (a Context)."""
    parser.add_argument("--grid-json", required=True, help="config['grid'] as JSON")
    parser.add_argument("--paper", required=True, help="paper_results.yaml")
    parser.add_argument("--preset", required=True)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--epoch-scale", type=float, default=1.0)
    parser.add_argument("--stage", choices=STAGES, default="best")


def context_from_args(args: argparse.Namespace) -> Context:
    return Context(args.preset, args.encoder, tuple(args.seeds), args.epoch_scale, args.stage)
