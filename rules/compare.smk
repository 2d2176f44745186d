# Your finished runs of a preset against the shipped reproduction of the same preset.
#
#   snakemake compare --config preset=cpu         results/cpu/compare.html, .csv against
#                                                 reference/cpu (the preset must be shipped)
#   snakemake compare --config compare_to=DIR     against another folder of a reproduction
#
# compare_to is a folder holding a reproduction's metrics.csv and claims.csv (reference/<preset>
# unless set). The analysis (workflow_src.analysis.compare) writes compare.csv: per cell and
# task the difference of the means with its interval from the two sets' seeds; the page
# (workflow_src.render.compare) sets both sets' claims side by side and names what differs
# between their machines and settings.

from workflow_src.analysis.compare import shipped_input

COMPARE_TO = config.get("compare_to") or layout.reference_dir(PRESET)


localrules:
    compare_cells,
    render_compare,
    compare,


rule compare_cells:
    input:
        metrics=rules.aggregate_metrics.output.metrics,
        shipped=lambda wildcards: shipped_input(COMPARE_TO, "metrics.csv", PRESET),
    output:
        cells=f"{OUT}/compare.csv",
        machines=f"{OUT}/compare-machines.csv",
    log:
        f"logs/compare_cells/{PRESET}.log",
    conda:
        "../envs/report.yaml"
    params:
        stage=STAGE,
    shell:
        "python -m workflow_src.analysis.compare --metrics-csv {input.metrics:q}"
        " --shipped-metrics-csv {input.shipped:q} --stage {params.stage:q}"
        " --output {output.cells:q} --machines-csv {output.machines:q} > {log:q} 2>&1"


rule render_compare:
    input:
        compare=rules.compare_cells.output.cells,
        machines=rules.compare_cells.output.machines,
        claims_csv=f"{OUT}/claims.csv",
        shipped_claims=lambda wildcards: shipped_input(COMPARE_TO, "claims.csv", PRESET),
        claims="report/claims.yaml",
    output:
        f"{OUT}/compare.html",
    log:
        f"logs/render_compare/{PRESET}.log",
    conda:
        "../envs/report.yaml"
    params:
        preset=PRESET,
        shipped_name=COMPARE_TO,
    shell:
        "python -m workflow_src.render.compare --compare-csv {input.compare:q}"
        " --claims-csv {input.claims_csv:q} --shipped-claims-csv {input.shipped_claims:q}"
        " --machines-csv {input.machines:q}"
        " --claims {input.claims:q} --preset {params.preset:q}"
        " --shipped-name {params.shipped_name:q} --output {output:q} > {log:q} 2>&1"


rule compare:
    input:
        rules.render_compare.output[0],
