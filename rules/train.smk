# One training job per cell and seed: every BERT ablation cell, the BiLSTM baseline and the
# multi-task runs go through the same command (workflow_src.train).


rule train_cell:
    input:
        DATA_FILES,
    output:
        metrics=f"{RUNS}/{{cell}}/seed{{seed}}/metrics.json",
        predictions=f"{RUNS}/{{cell}}/seed{{seed}}/predictions.csv",
    log:
        f"logs/train_cell/{PRESET}/{{cell}}/seed{{seed}}.log",
    benchmark:
        f"results/benchmarks/{PRESET}/{{cell}}/seed{{seed}}.tsv"
    conda:
        "../environment.yml"
    threads: PRESET_CONFIG["threads"]
    resources:
        gpu=PRESET_CONFIG["resources"]["gpu"],
        mem_mb=PRESET_CONFIG["resources"]["mem_mb"],
        runtime=PRESET_CONFIG["resources"]["runtime"],
        cpus_per_task=PRESET_CONFIG["resources"]["cpus_per_task"],
    params:
        settings=cell_settings_json,
        run_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "python -m workflow_src.train --settings-json {params.settings:q}"
        " --seed {wildcards.seed} --run-dir {params.run_dir} > {log} 2>&1"
