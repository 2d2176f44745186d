"""The CPU-independent parts of the benchmarks: FLOPs formula, peak table, grid projection.

No test here times anything (timings are figures for RESULTS.md, never assertions).
"""

from __future__ import annotations

import importlib.util
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


def test_bert_base_matmul_params_match_the_known_count(gpu):
    """12 layers of 4H^2 + 8H^2 weights (+ biases) at H=768: 85.0M; pooler 0.59M."""
    layer, pooler = gpu.bert_matmul_params(12, 768, 3072)
    assert layer == 12 * (4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768)
    assert 84.9e6 < layer < 85.1e6
    assert pooler == 768 * 768 + 768


def test_bert_matmul_params_agree_with_torch_linear_layers(gpu):
    """The closed form equals the Linear parameters of a real (small) BertModel's layers."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
    )
    model = BertModel(cfg)
    linear = sum(
        p.numel()
        for m in model.encoder.modules()
        if isinstance(m, torch.nn.Linear)
        for p in m.parameters()
    )
    assert gpu.bert_matmul_params(2, 64, 128) == (linear, 64 * 64 + 64)


def test_train_flops_are_six_per_parameter_per_token_plus_attention(gpu):
    """6 N T + 12 L H T^2 + 6 N_seq; the attention share grows with T^2."""
    flops = gpu.train_flops_per_sequence(1000, 10, layers=2, hidden=4, seq_len=8)
    assert flops == 6 * 1000 * 8 + 12 * 2 * 4 * 64 + 60
    short = gpu.train_flops_per_sequence(1000, 0, 2, 4, 8)
    long = gpu.train_flops_per_sequence(1000, 0, 2, 4, 16)
    assert long == 2 * 6 * 1000 * 8 + 4 * 12 * 2 * 4 * 64
    assert long > 2 * short


def test_bert_base_at_128_tokens_is_about_85_gflops_per_sequence(gpu):
    """Sanity: 6 * 85M * 128 + 12 * 12 * 768 * 128^2 = 65.3 + 1.8 GFLOPs."""
    layer, pooler = gpu.bert_matmul_params(12, 768, 3072)
    flops = gpu.train_flops_per_sequence(layer, pooler, 12, 768, 128)
    assert 66e9 < flops < 68e9


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


def test_smart_costs_its_extra_passes(gpu):
    assert gpu.smart_cost({}) == 1.0
    assert gpu.smart_cost({"enabled": False, "steps": 3}) == 1.0
    assert gpu.smart_cost({"enabled": True, "steps": 1, "bregman": True}) == pytest.approx(10 / 3)
    assert gpu.smart_cost({"enabled": True, "steps": 2, "bregman": False}) == pytest.approx(4.0)


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
    from workflow_src import grid

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
