"""Pack what a GPU machine without the network, Snakemake or the embedded-encoder package needs
to train the grid: the data and a bf16 copy of the embedded encoder, in one small folder.

    python benchmarks/gpu_carry.py                      # -> gpu-carry/ (git ignores it)
    python benchmarks/gpu_carry.py --data-dir DIR --out gpu-carry

The data are the DAG's own verified files (`data/cs224n/`, written by the download rule, with
its PROVENANCE.json and, offline, the Quora stand-in), about 6 MB. The encoder is saved in
bfloat16 (about 45 MB instead of 91 MB) with its tokenizer files, and its config names float32,
so training loads it in fp32 as it loads the embedded original: the starting weights are the
embedded ones rounded to bf16 (8 bits of mantissa). On the GPU machine:

    python benchmarks/gpu_throughput.py
    python benchmarks/calibrate.py run --regime paper --cells all --device cuda --jobs 4 \\
        --encoder gpu-carry/encoder --data-dir gpu-carry/data --runs $OUT/runs --deadline-s 420
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA_FILES = (
    "ids-sst-train.csv",
    "ids-sst-dev.csv",
    "quora-train.csv",
    "quora-dev.csv",
    "sts-train.csv",
    "sts-dev.csv",
    "PROVENANCE.json",
)


def carry_data(data_dir: Path, out: Path) -> int:
    """Copy the training and dev files (and their provenance); the number of bytes copied."""
    missing = [name for name in DATA_FILES if not (data_dir / name).is_file()]
    if missing:
        raise SystemExit(
            f"{data_dir} lacks {', '.join(missing)}: run `snakemake --cores 1 "
            "data/cs224n/PROVENANCE.json` first (it downloads and verifies them)"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in DATA_FILES:
        shutil.copy2(data_dir / name, out / name)
    return sum((out / name).stat().st_size for name in DATA_FILES)


def carry_encoder(out: Path) -> int:
    """Save the embedded encoder in bf16 with its tokenizer; the number of bytes written."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from workflow_src.data.encoders import EMBEDDED, resolve_encoder

    source = resolve_encoder(EMBEDDED)
    AutoModel.from_pretrained(source, dtype=torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    # Stored in bf16, trained in fp32 like the embedded original: transformers loads a folder in
    # the dtype its config names, so the config keeps naming float32.
    config_file = out / "config.json"
    config = json.loads(config_file.read_text())
    config.update({key: "float32" for key in ("dtype", "torch_dtype") if key in config})
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    return sum(path.stat().st_size for path in out.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "cs224n")
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-carry")
    args = parser.parse_args()
    data = carry_data(args.data_dir, args.out / "data")
    encoder = carry_encoder(args.out / "encoder")
    print(f"{args.out}: data {data / 1e6:.1f} MB, encoder {encoder / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
