# One training job per cell and seed: every BERT ablation cell, the BiLSTM baseline and the
# multi-task runs go through the same command (python -m workflow_src.train). Resources come per
# cell from the preset and its cost estimate (TRAIN_JOBS in common.smk, `snakemake cost`); jobs the
# preset gives no GPU while others get one run as train_cell_cpu, which a profile's GPU
# settings for train_cell do not reach. The encoder comes from a local folder (fetch_encoder)
# or the package, never the network: HF_HUB_OFFLINE=1.


rule train_cell:
    input:
        DATA_FILES,
        ENCODER_PROVENANCE,
        tokens=cell_tokens,
    output:
        metrics=f"{TRAINED}/{{cell}}/seed{{seed}}/metrics.json",
        predictions=f"{TRAINED}/{{cell}}/seed{{seed}}/predictions.csv",
    log:
        f"logs/train_cell/{PRESET}/{{cell}}/seed{{seed}}.log",
    benchmark:
        f"results/benchmarks/{PRESET}/{{cell}}/seed{{seed}}.tsv"
    wildcard_constraints:
        cell=cells_except_regex(CPU_CELLS),
    conda:
        "../envs/train.yaml"
    threads: PRESET_CONFIG["threads"]
    resources:
        gpu=train_resource("gpu"),
        mem_mb=train_resource("mem_mb"),
        runtime=train_resource("runtime"),
        cpus_per_task=train_resource("cpus_per_task"),
        # config.yaml `tracking`, as a resource rather than a param: curves change no result,
        # so switching tracking on must not rerun finished runs (a changed param would).
        tensorboard=int(config.get("tracking", "none") == "tensorboard"),
        # The preset's within-epoch learning curve, a resource for the same reason.
        curve_points=PRESET_CONFIG["curve_points"],
        curve_dev_rows=PRESET_CONFIG["curve_dev_rows"],
    params:
        settings=cell_settings_json,
        tokens=cell_tokens_args,
        run_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "HF_HUB_OFFLINE=1 python -m workflow_src.train --settings-json {params.settings:q}"
        " --seed {wildcards.seed:q} --run-dir {params.run_dir:q} --tokens {params.tokens}"
        " --tensorboard {resources.tensorboard:q} --curve-points {resources.curve_points:q}"
        " --curve-dev-rows {resources.curve_dev_rows:q} > {log:q} 2>&1"


use rule train_cell as train_cell_cpu with:
    wildcard_constraints:
        cell=cells_regex(CPU_CELLS),
    threads: PRESET_CONFIG.get("bilstm_resources", PRESET_CONFIG["resources"])["cpus_per_task"]


# CS224N submission files (the starter's six *-output.csv) of each multi-task cell, from its
# first seed's best-epoch weights; a GPU job like training where the preset has GPUs. The
# weights exist only where the run was trained (TRAINED; shipped runs keep no weights).
#   snakemake submission   -> results/<preset>/submission/<cell>/
rule write_submission:
    input:
        metrics=f"{TRAINED}/{{cell}}/seed{SEEDS[0]}/metrics.json",
        test=rules.download_test_data.output[0],
        data=DATA_FILES,
        encoder=ENCODER_PROVENANCE,
    output:
        directory(f"{OUT}/submission/{{cell}}"),
    log:
        f"logs/write_submission/{PRESET}/{{cell}}.log",
    wildcard_constraints:
        cell=cells_regex(MULTITASK_CELLS),
    conda:
        "../envs/train.yaml"
    threads: PRESET_CONFIG["threads"]
    resources:
        gpu=train_resource("gpu"),
        mem_mb=train_resource("mem_mb"),
        runtime=60,
        cpus_per_task=train_resource("cpus_per_task"),
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.metrics),
        test_dir=lambda wildcards, input: os.path.dirname(input.test),
    shell:
        "HF_HUB_OFFLINE=1 python -m workflow_src.train.submit --run-dir {params.run_dir:q}"
        " --test-dir {params.test_dir:q} --out-dir {output:q} > {log:q} 2>&1"


localrules:
    submission,


rule submission:
    input:
        expand(f"{OUT}/submission/{{cell}}", cell=MULTITASK_CELLS),
