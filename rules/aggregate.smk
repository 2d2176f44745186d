# Every run's metrics.json -> results/metrics.csv (one row per run), results/epochs.csv
# (per-epoch dev metrics) and results/summary.csv (per cell and metric: mean, sd, n, 95%
# bootstrap interval and the seed that drew it).


localrules:
    aggregate_metrics,


rule aggregate_metrics:
    input:
        run_metrics(ALL_CELLS),
    output:
        metrics="results/metrics.csv",
        epochs="results/epochs.csv",
        summary=report(
            "results/summary.csv",
            caption="../report/captions/summary.rst",
            category="Data",
            labels={"file": "summary.csv"},
        ),
    log:
        "logs/aggregate_metrics/aggregate_metrics.log",
    conda:
        "../envs/report.yaml"
    params:
        preset=PRESET,  # reruns the summary when the preset in force changes
        bootstrap=2000,
        bootstrap_seed=0,
    shell:
        "python -m workflow_src.aggregate --runs {input} --metrics-csv {output.metrics}"
        " --epochs-csv {output.epochs} --summary-csv {output.summary}"
        " --bootstrap {params.bootstrap} --bootstrap-seed {params.bootstrap_seed} > {log} 2>&1"
