# Every run's metrics.json -> results/<preset>/metrics.csv (one row per run), epochs.csv
# (per-epoch dev metrics) and summary.csv (per cell and metric: mean, sd, n, dev examples and a
# 95% interval over the seeds and the dev sample), in the preset's own folder.


localrules:
    aggregate_metrics,


rule aggregate_metrics:
    input:
        run_metrics(ALL_CELLS),
    output:
        metrics=f"{OUT}/metrics.csv",
        epochs=f"{OUT}/epochs.csv",
        summary=report(
            f"{OUT}/summary.csv",
            caption="../report/captions/summary.rst",
            category="Data",
            labels={"file": "summary.csv"},
        ),
    log:
        f"logs/aggregate_metrics/{PRESET}.log",
    conda:
        "../envs/report.yaml"
    shell:
        "python -m workflow_src.analysis.aggregate --runs {input:q} --metrics-csv {output.metrics:q}"
        " --epochs-csv {output.epochs:q} --summary-csv {output.summary:q} > {log:q} 2>&1"
