# The analysis: the paper's claims decided on every run's dev predictions, and every
# single-task BERT cell checked against its floors -> results/<preset>/claims.csv, floors.csv.
# The report reads them; nothing under workflow_src/render computes an interval or a verdict.
# The same command decides the claims on any folder of runs:
#   python -m workflow_src.analysis --runs DIR --claims report/claims.yaml --out-dir OUT
# (the model: docs/statistics.md). The cells whose runs it is given are those it decides the
# claims on: here the preset's cells (a subset, such as `regime`'s, decides each claim on the
# comparisons those cells make, and claims.csv's `scope` says what it was not decided on).


localrules:
    decide_claims,


rule decide_claims:
    input:
        runs=run_metrics(ALL_CELLS),
        # the claims are checked on every run's dev predictions (beside its metrics.json)
        predictions=run_predictions(ALL_CELLS),
        claims="report/claims.yaml",
    output:
        claims=report(
            f"{OUT}/claims.csv",
            caption="../report/captions/claims.rst",
            category="Data",
            labels={"file": "claims.csv"},
        ),
        floors=report(
            f"{OUT}/floors.csv",
            caption="../report/captions/floors.rst",
            category="Data",
            labels={"file": "floors.csv"},
        ),
    log:
        f"logs/decide_claims/{PRESET}.log",
    conda:
        "../envs/report.yaml"
    shell:
        "python -m workflow_src.analysis --runs {input.runs:q} --claims {input.claims:q}"
        " --claims-csv {output.claims:q} --floors-csv {output.floors:q} > {log:q} 2>&1"
