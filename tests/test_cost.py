"""The cost estimate's arithmetic (workflow_src/spec/cost.py): FLOPs per sequence, examples per run,
shares of a training pass, seconds per cell, totals per table, and the jobs' resources."""

from __future__ import annotations

import copy
import math
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_workflow, tool
from workflow_src.spec import cost, grid, layout

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
SHAPE = cost.EncoderShape(layers=4, hidden=8, intermediate=16)


def at(preset: str) -> dict:
    config = copy.deepcopy(CONFIG)
    config["preset"] = preset
    return config


def toy_preset(**cost_values) -> dict:
    values = {
        "tflops": 1.0,
        "gpu_peak_tflops": None,
        "gpu_mfu": None,
        "bilstm_examples_per_s": 100.0,
        "startup_s": 10.0,
    }
    values.update(cost_values)
    resources = {"gpu": 0, "mem_mb": 1000, "runtime": 5, "cpus_per_task": 1}
    return {"cost": values, "resources": resources}


def test_bert_base_matmul_params_match_the_known_count():
    """12 layers of 4H^2 + 8H^2 weights (+ biases) at H=768: 85.0M; pooler 0.59M."""
    layer, pooler = cost.bert_matmul_params(12, 768, 3072)
    assert layer == 12 * (4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768)
    assert 84.9e6 < layer < 85.1e6
    assert pooler == 768 * 768 + 768


def test_bert_matmul_params_agree_with_torch_linear_layers():
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
    assert cost.bert_matmul_params(2, 64, 128) == (linear, 64 * 64 + 64)


def test_train_flops_are_six_per_parameter_per_token_plus_attention():
    """6 N T + 12 L H T^2 + 6 N_seq; the attention share grows with T^2."""
    flops = cost.train_flops_per_sequence(1000, 10, layers=2, hidden=4, seq_len=8)
    assert flops == 6 * 1000 * 8 + 12 * 2 * 4 * 64 + 60
    short = cost.train_flops_per_sequence(1000, 0, 2, 4, 8)
    long = cost.train_flops_per_sequence(1000, 0, 2, 4, 16)
    assert long == 2 * 6 * 1000 * 8 + 4 * 12 * 2 * 4 * 64
    assert long > 2 * short


def test_bert_base_at_128_tokens_is_about_85_gflops_per_sequence():
    """Sanity: 6 * 85M * 128 + 12 * 12 * 768 * 128^2 = 65.3 + 1.8 GFLOPs."""
    layer, pooler = cost.bert_matmul_params(12, 768, 3072)
    flops = cost.train_flops_per_sequence(layer, pooler, 12, 768, 128)
    assert 66e9 < flops < 68e9


def test_smart_costs_its_extra_passes():
    assert cost.smart_cost({}) == 1.0
    assert cost.smart_cost({"enabled": False, "steps": 3}) == 1.0
    assert cost.smart_cost({"enabled": True, "steps": 1, "bregman": True}) == pytest.approx(10 / 3)
    assert cost.smart_cost({"enabled": True, "steps": 2, "bregman": False}) == pytest.approx(4.0)


def test_a_run_sees_the_limited_examples_and_single_task_quora_is_cut_to_the_sst_size():
    sizes = cost.DATA_SIZES
    quora = {"tasks": ["quora"], "downsample_quora_to_sst": True}
    assert cost.examples(quora) == {"quora": (sizes["sst"][0], sizes["quora"][1])}
    multi = {"tasks": ["sst", "quora", "sts"], "downsample_quora_to_sst": False}
    assert cost.examples(multi)["quora"] == sizes["quora"]
    limited = {"tasks": ["sts"], "train_limit": 800, "dev_limit": 400}
    assert cost.examples(limited) == {"sts": (800, 400)}


def test_frozen_and_partly_frozen_encoders_cost_their_share_of_a_training_pass():
    assert cost.train_share("all", 12) == 1.0
    assert cost.train_share("none", 12) == pytest.approx(1 / 3)  # forward only
    assert cost.train_share("last1", 12) == pytest.approx((1 + 2 / 12) / 3)
    assert cost.train_share("last2", 6) == pytest.approx((1 + 4 / 6) / 3)


def test_sequences_are_costed_at_the_mean_length_capped_by_max_length():
    assert cost.sequence_tokens("sst", False, 128) == cost.MEAN_TOKENS["sst"]
    assert cost.sequence_tokens("sst", False, 16) == 16
    joint = cost.sequence_tokens("quora", True, 128)
    assert joint == 2 * cost.MEAN_TOKENS["quora"] - 1  # both sentences, one [CLS]


def test_a_cells_seconds_are_startup_plus_epochs_times_flops_over_the_rate():
    settings = {
        "tasks": ["sst"],
        "epochs": 2,
        "finetune": "all",
        "max_length": 64,
        "train_limit": 100,
        "dev_limit": 30,
    }
    got = cost.cell_cost("c", settings, toy_preset(), SHAPE)
    per_sequence = cost.sequence_flops(SHAPE, cost.MEAN_TOKENS["sst"])
    assert got.seconds == pytest.approx(10.0 + 2 * (100 + 30 / 3) * per_sequence / 1e12)
    assert (got.train_examples, got.examples_seen, got.device) == (100, 200, "cpu")


def test_pairs_encoded_separately_cost_two_sequences_and_smart_its_extra_passes():
    base = {"epochs": 1, "finetune": "all", "max_length": 64, "train_limit": 60, "dev_limit": 30}
    sts = cost.cell_cost("s", {**base, "tasks": ["sts"]}, toy_preset(startup_s=0), SHAPE)
    per_sequence = cost.sequence_flops(SHAPE, cost.MEAN_TOKENS["sts"])
    assert sts.seconds == pytest.approx(2 * (60 + 10) * per_sequence / 1e12)
    smart = {"enabled": True, "steps": 1, "bregman": True}
    with_smart = cost.cell_cost(
        "s", {**base, "tasks": ["sts"], "smart": smart}, toy_preset(startup_s=0), SHAPE
    )
    assert with_smart.seconds == pytest.approx(2 * (60 * 10 / 3 + 10) * per_sequence / 1e12)


def test_without_a_measured_rate_the_gpu_rate_is_peak_times_mfu():
    settings = {"tasks": ["sst"], "epochs": 1, "finetune": "all", "max_length": 64}
    measured = cost.cell_cost("c", settings, toy_preset(tflops=30.0, startup_s=0), SHAPE)
    stated = cost.cell_cost(
        "c", settings, toy_preset(tflops=None, gpu_peak_tflops=300, gpu_mfu=0.1), SHAPE
    )
    assert stated.seconds - 10.0 == pytest.approx(measured.seconds)


def test_bilstm_runs_cost_their_examples_at_the_measured_rate():
    settings = {
        "model": "bilstm",
        "tasks": ["sst"],
        "epochs": 3,
        "train_limit": 200,
        "dev_limit": 30,
    }
    got = cost.cell_cost("b", settings, toy_preset(), SHAPE)
    assert got.seconds == pytest.approx(10.0 + 3 * (200 + 10) / 100.0)


def test_totals_count_every_run_once_and_tables_count_their_own_cells():
    config = at("quick")
    costs = cost.grid_costs(config)
    assert list(costs) == list(grid.build_cells(config["grid"]))
    text = cost.report(config)
    total = sum(c.seconds for c in costs.values()) / 3600
    assert f"{sum(c.examples_seen for c in costs.values()):,} training examples" in text
    assert f"{total:.2f} CPU-hours" in text
    table3 = grid.build_tables(config["grid"])[3].cells()
    seen = sum(costs[c].examples_seen for c in table3)
    hours = sum(costs[c].seconds for c in table3) / 3600
    line = next(line for line in text.splitlines() if line.startswith("Table 3 "))
    assert line.split()[2:] == [str(len(table3)), f"{seen:,}", "0.00", f"{hours:.2f}"]


def test_seeds_multiply_the_paper_totals():
    config = at("paper")
    costs = cost.grid_costs(config)
    seeds = len(config["presets"]["paper"]["seeds"])
    gpu = sum(c.seconds for c in costs.values() if c.device == "gpu") * seeds / 3600
    assert f"{gpu:.2f} GPU-hours" in cost.report(config)


def test_paper_bilstm_jobs_ask_for_no_gpu_and_train_on_their_cpu_cores():
    config = at("paper")
    plan = cost.job_plan(config)
    bilstm = CONFIG["presets"]["paper"]["bilstm_resources"]
    assert plan["sst-bilstm"]["gpu"] == 0 and plan["sst-base"]["gpu"] == 1
    settings = grid.cell_settings(config, "sst-bilstm")
    assert settings["device"] == "cpu" and settings["threads"] == bilstm["cpus_per_task"]
    assert grid.cell_settings(config, "sst-base")["device"] == "cuda"


def test_runtime_is_the_margin_times_the_estimate_and_never_below_the_floor():
    config = at("paper")
    preset = config["presets"]["paper"]
    costs, plan = cost.grid_costs(config), cost.job_plan(config)
    smart = costs["multitask-smart"]
    assert plan["multitask-smart"]["runtime"] == max(
        preset["resources"]["runtime"], math.ceil(preset["runtime_margin"] * smart.seconds / 60)
    )
    assert plan["multitask-smart"]["runtime"] > plan["sst-base"]["runtime"]
    assert min(p["runtime"] for p in plan.values()) >= preset["resources"]["runtime"]
    assert max(p["runtime"] for p in plan.values()) < 720  # not the 12 hours of one constant


def test_snakemake_cost_prints_the_estimate_of_the_preset_in_force(tmp_path):
    workdir = copy_workflow(tmp_path)
    done = subprocess.run(
        [tool("snakemake"), "cost", "--cores", "1", "--config", "preset=paper"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = cost.report(at("paper"))
    assert expected.splitlines()[0] in done.stdout
    assert expected.splitlines()[-2] in done.stdout  # the CPU total line


def test_the_estimate_counts_the_finished_runs_and_the_hours_left(tmp_path):
    """A long background run (the regime) asks `snakemake cost` how far it has come: a run
    counts as finished only with both of its files, and the hours left are the others'."""
    config = at("regime")
    costs = cost.grid_costs(config)
    seeds = config["presets"]["regime"]["seeds"]
    for cell, seed in (("sst-base", 1), ("sts-base", 2)):
        for name in layout.RUN_FILES:
            (tmp_path / cell / f"seed{seed}").mkdir(parents=True, exist_ok=True)
            (tmp_path / cell / f"seed{seed}" / name).write_text("{}")
    (tmp_path / "sst-adamw" / "seed1").mkdir(parents=True)
    (tmp_path / "sst-adamw" / "seed1" / "predictions.csv").write_text("")  # killed before the end
    total = len(costs) * len(seeds)
    left = (sum(c.seconds for c in costs.values()) * len(seeds)
            - costs["sst-base"].seconds - costs["sts-base"].seconds) / 3600  # fmt: skip
    line = cost.report(config, tmp_path).splitlines()[-1]
    assert line.startswith(f"finished: 2 of {total} runs in {tmp_path}/")
    assert line.endswith(f"the {total - 2} left: {left:.2f} hours")
    assert "finished:" not in cost.report(config)
