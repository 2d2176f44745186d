"""The CPU-independent parts of the benchmarks: peak table, grid projection (the FLOPs formula
they share with the cost estimate is tested in test_cost.py).

No test here times anything (timings are figures for RESULTS.md, never assertions).
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import yaml
from conftest import REPO_ROOT


def _load(name: str):
    path = REPO_ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu():
    return _load("gpu_throughput")


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA L40S", 362.0),
        ("Tesla T4", None),
    ],
)
def test_peak_table_matches_cuda_device_names(gpu, name, peak):
    """More specific names win (H100 PCIe before H100, L40S before L4); unknown cards: None."""
    assert gpu.peak_tflops(name) == peak


def test_cell_sequences_count_pairs_twice_epochs_and_quora_downsampling(gpu):
    sizes = {"sst": (100, 30), "quora": (1000, 60), "sts": (50, 9)}
    sst = {"tasks": ["sst"], "epochs": 2, "downsample_quora_to_sst": False}
    assert gpu.cell_sequences(sst, sizes) == pytest.approx(2 * (100 + 30 / 3))
    quora = {"tasks": ["quora"], "epochs": 1, "downsample_quora_to_sst": True}
    assert gpu.cell_sequences(quora, sizes) == pytest.approx(2 * (100 + 60 / 3))
    multi = {
        "tasks": ["sst", "quora", "sts"],
        "epochs": 1,
        "downsample_quora_to_sst": False,
        "smart": {"enabled": True, "steps": 1, "bregman": True},
    }
    expected = sum(
        v * (n * 10 / 3 + d / 3) for v, (n, d) in zip((1, 2, 2), sizes.values(), strict=True)
    )
    assert gpu.cell_sequences(multi, sizes) == pytest.approx(expected)


def test_grid_projection_scales_with_seconds_and_counts_every_run(gpu, config):
    """Every cell x every paper seed; GPU-hours linear in the measured seconds per sequence."""
    from workflow_src.spec import grid

    sizes = dict(gpu.DATA_SIZES)
    one, runs, per_cell = gpu.project_grid(config, 1e-3, sizes, overhead_s=0.0)
    two, _, _ = gpu.project_grid(config, 2e-3, sizes, overhead_s=0.0)
    seeds = len(config["presets"]["paper"]["seeds"])
    assert runs == len(grid.build_cells(config["grid"])) * seeds
    assert set(per_cell) == set(grid.build_cells(config["grid"]))
    assert two == pytest.approx(2 * one)
    assert one == pytest.approx(seeds * sum(per_cell.values()) * 1e-3 / 3600)
    with_overhead, _, _ = gpu.project_grid(config, 1e-3, sizes, overhead_s=36.0)
    assert with_overhead == pytest.approx(one + runs * 36.0 / 3600)
    # Table 5's 30-epoch cell costs three times the 10-epoch base cell of the same task.
    assert per_cell["sst-epochs30"] == pytest.approx(3 * per_cell["sst-base"])


def test_gpu_benchmark_without_cuda_exits_with_a_message(gpu, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert gpu.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_throughput_benchmark_builds_the_projects_sst_config(tmp_path):
    """The project contender is the real TrainConfig of an SST run at the benchmark's sizes."""
    bench = _load("train_throughput")
    args = bench.parse_args(["--data-dir", str(tmp_path), "--threads", "2"])
    cfg = bench.project_config(args, "bf16", 640, 64)
    assert (cfg.tasks, cfg.batch_size, cfg.threads, cfg.max_length) == (("sst",), 32, 2, 128)
    assert (cfg.precision, cfg.train_limit, cfg.epochs) == ("bf16", 640, 1)


@pytest.fixture(scope="module")
def calibrate():
    return _load("calibrate")


def test_calibration_cells_all_is_every_cell_multitask_first(calibrate, config):
    from workflow_src.spec import grid

    cells = calibrate.chosen_cells(["all"])
    assert sorted(cells) == sorted(grid.build_cells(config["grid"]))
    assert set(cells[:2]) == {"multitask-additive", "multitask-smart"}  # the longest start first
    assert calibrate.chosen_cells(["sst-base"]) == ["sst-base"]
    with pytest.raises(SystemExit, match="unknown cells: sst-bogus"):
        calibrate.chosen_cells(["sst-base", "sst-bogus"])


def test_the_paper_regime_on_a_gpu_trains_the_carried_encoder_at_the_papers_settings(calibrate):
    """What a GPU session runs: the paper's epochs, learning rate and batch, on the card, from
    the carried encoder folder and data; the BiLSTM cells stay on the CPU as in the paper preset."""
    args = calibrate.argparse.Namespace(
        regime="paper", encoder="gpu-carry/encoder", device="cuda", threads=2,
        data_dir="gpu-carry/data", dev_limit=None, train_limit=None,
    )  # fmt: skip
    settings = calibrate.regime_settings(args, "sst-lr1e-4")
    assert (settings["epochs"], settings["lr"], settings["batch_size"]) == (10, 1e-4, 32)
    assert (settings["device"], settings["encoder"]) == ("cuda", "gpu-carry/encoder")
    assert settings["data_dir"] == "gpu-carry/data" and settings["train_limit"] is None
    assert calibrate.regime_settings(args, "sst-bilstm")["device"] == "cpu"


def test_the_carried_encoder_is_stored_in_bf16_and_loads_in_fp32(tmp_path):
    """transformers loads a folder in the dtype its config names: the carry keeps float32
    there, so a GPU run trains fp32 weights under autocast exactly as the workflow does."""
    import torch
    from safetensors import safe_open

    from workflow_src.train.model import load_transformer

    carry = _load("gpu_carry")
    carry.carry_encoder(tmp_path / "encoder")
    with safe_open(tmp_path / "encoder" / "model.safetensors", "pt") as stored:
        assert stored.get_tensor(next(iter(stored.keys()))).dtype == torch.bfloat16
    assert next(load_transformer(str(tmp_path / "encoder")).parameters()).dtype == torch.float32


def test_carrying_data_without_the_verified_files_names_them_and_the_remedy(tmp_path):
    carry = _load("gpu_carry")
    (tmp_path / "ids-sst-train.csv").write_text("id\tsentence\tsentiment\n")
    with pytest.raises(SystemExit, match=r"lacks ids-sst-dev\.csv.*snakemake --cores 1"):
        carry.carry_data(tmp_path, tmp_path / "out")


def test_throughput_benchmark_compares_with_the_trainer_as_a_careful_user_sets_it_up():
    bench = _load("train_throughput")
    assert "trainer-bf16-group" in bench.parse_args([]).contenders
    assert bench.TRAINER[-1] == "trainer-bf16-group"


def test_cost_fit_recovers_the_rate_and_set_up_the_runs_were_made_with(tmp_path, config):
    """Runs whose wall seconds follow set-up + FLOPs / rate (BiLSTM: examples / rate) give
    back that rate, set-up and examples/s."""
    import json

    from workflow_src.spec import grid

    fit = _load("cost_fit")
    config = {**config, "preset": "cpu"}
    cells = grid.build_cells(config["grid"])
    for cell in ("sst-base", "sts-base", "quora-epochs20", "sst-finetune-none", "sts-bilstm"):
        model, work = fit.run_work(config, cell, cells)
        seconds = 3.0 + work / 0.05e12 if model == "bert" else work / 200.0
        run = tmp_path / cell / "seed1"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"compute": {"wall_seconds": seconds}}))
    result = fit.fit(config, tmp_path, import_s=2.0)
    assert result["tflops"] == pytest.approx(0.05)
    assert result["setup_s"] == pytest.approx(3.0)
    assert result["startup_s"] == pytest.approx(5.0)
    assert result["bilstm_examples_per_s"] == pytest.approx(200.0)


def test_quick_tradeoff_prices_the_quick_variants_from_the_cost_model(config, capsys):
    """Issue 27: the default run's trade-off table; fewer rows or epochs cost less."""
    tradeoff = _load("quick_tradeoff")
    assert tradeoff.main([]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    seconds = {line[:40].strip(): float(line[40:].split()[0]) for line in lines}
    assert set(seconds) == set(tradeoff.VARIANTS)
    now = seconds["quick (config.yaml)"]
    assert seconds["quick before issue 27's last change"] > now > seconds["400 train rows per task"]
    assert seconds["400 train rows per task"] > seconds["200 train / 100 dev rows per task"]


def test_curves_by_cell_average_seeds_and_name_each_seeds_best_epoch(calibrate, tmp_path, capsys):
    """What CALIBRATION.md's regime curves come from: reference/regime/runs lays runs out as
    <cell>/seed<k>/, with no regime folder above them."""

    def write_run(seed: int, curve: list[float], seconds: list[float]) -> None:
        epochs = [
            {"epoch": i + 1, "dev": {"sst": {"accuracy": value}}, "seconds": s}
            for i, (value, s) in enumerate(zip(curve, seconds, strict=True))
        ]
        metrics = {"run": {"cell": "sst-base", "seed": seed, "tasks": ["sst"]}, "epochs": epochs}
        folder = tmp_path / "sst-base" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(metrics))

    write_run(1, [0.40, 0.50, 0.45], [100, 300, 100])
    write_run(2, [0.42, 0.44, 0.46], [100, 100, 900])
    calibrate.show_by_cell(calibrate.argparse.Namespace(runs=tmp_path, update=None))
    *_, row, _, summary = capsys.readouterr().out.splitlines()
    assert row == "| sst-base | 2 | 0.410 0.470 0.455 | 2, 3 | 100 |"
    assert summary == (
        "Best epoch at the last: 1 of 2 runs (sst-base seed 2), still rising by 4.0 points "
        "over their last 2 epochs; the other runs' best epochs lie at 2 (median 2)."
    )
    page = tmp_path / "page.md"
    page.write_text(f"text\n{calibrate.CURVES_OPEN}\nstale\n{calibrate.CURVES_CLOSE}\nafter\n")
    calibrate.show_by_cell(calibrate.argparse.Namespace(runs=tmp_path, update=page))
    assert page.read_text() == (
        f"text\n{calibrate.CURVES_OPEN}\n{calibrate.curves_by_cell(tmp_path)}"
        f"{calibrate.CURVES_CLOSE}\nafter\n"
    )


def test_calibration_page_shows_the_regime_curves_of_the_committed_runs(calibrate):
    """benchmarks/CALIBRATION.md's regime-curves block is what reference/regime/runs give: a run
    committed without regenerating it fails here, naming the command."""
    page = (REPO_ROOT / "benchmarks" / "CALIBRATION.md").read_text()
    block = calibrate.CURVES_BLOCK.search(page)
    assert block, "CALIBRATION.md lost its regime-curves block"
    runs = REPO_ROOT / "reference" / "regime" / "runs"
    assert block.group(0) == (
        f"{calibrate.CURVES_OPEN}\n{calibrate.curves_by_cell(runs)}{calibrate.CURVES_CLOSE}"
    ), (
        "run: python benchmarks/calibrate.py show --by-cell --runs reference/regime/runs --update benchmarks/CALIBRATION.md"
    )
