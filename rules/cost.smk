# `snakemake cost`: training examples and compute hours per cell, per table and in total at the
# preset in force, before anything runs (workflow_src/spec/cost.py holds the model and its sources).
# The same estimates size every training job's wall-time limit (TRAIN_JOBS, rules/train.smk).


localrules:
    cost,


rule cost:
    log:
        "logs/cost/cost.log",
    # the embedded encoder's shape comes from its model package, which brings torch
    conda:
        "../envs/train.yaml"
    params:
        config=json.dumps(
            {
                "preset": PRESET,
                "presets": {PRESET: PRESET_CONFIG},
                "grid": config["grid"],
                "data": {"max_bad_rows": config["data"]["max_bad_rows"]},
            },
            sort_keys=True,
        ),
        runs=layout.runs_dir(PRESET),
    shell:
        "python -m workflow_src.spec.cost --config-json {params.config:q}"
        " --runs-dir {params.runs:q} 2> {log:q}"
