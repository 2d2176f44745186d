# What people read: the paper's Tables 1-9 as LaTeX and the HTML report.
#
#   snakemake results/table9.tex   Table 9 and only the training runs it shows
#   snakemake report               results/<preset>/report.html (the rule `report` below)
#   snakemake --report report.html Snakemake's own report of the tables, plots and the page
#
# Every output sits in results/<preset>/ (OUT), so one preset's tables and report never
# overwrite another's; results/table<N>.tex is a copy of the preset in force's table, so that
# `snakemake results/table9.tex` names a table without naming the preset.
#
# A table's inputs are only its own cells' metrics.json (table_cells in common.smk), so naming
# one table builds no other table's runs. Numbers are best-epoch dev metrics (STAGE), as the
# CS224N starter code keeps the best dev checkpoint. The report reads claims.csv and floors.csv
# (rules/analysis.smk) and curves.csv (collect_curves); it computes no interval or verdict. Its
# first screen is a sentence per verdict class and the forest plot (claims.png, claims.pdf).

from pathlib import Path

STAGE = "best"
CAVEAT_PARAMS = dict(
    preset=PRESET,
    encoder=PRESET_CONFIG["encoder"],
    seeds=" ".join(str(seed) for seed in SEEDS),
    epoch_scale=PRESET_CONFIG["epoch_scale"],
    stage=STAGE,
    # only the grid keys that lay out the tables (grid.TABLE_LAYOUT_KEYS): a setting that only
    # changes what a cell trains re-renders just the tables showing that cell, through its runs
    grid=grid.table_layout_json(config["grid"]),
)


localrules:
    render_table,
    copy_table,
    collect_curves,
    render_report,
    report,


# Other shipped scales (preset -> claims.csv in reference/<preset>/): a second marker per row
# of the forest plot.
OTHER_SCALES = {
    path.parent.name: str(path)
    for path in sorted(Path(layout.REFERENCE).glob("*/claims.csv"))
    if path.parent.name != PRESET
}
# The shipped summary of this preset flags cells only when this render is not the shipped
# reproduction itself (which would agree with itself everywhere).
SHIPPED_SUMMARY = [
    path
    for path in [f"{layout.reference_dir(PRESET)}/summary.csv"]
    if Path(path).exists() and not OUT.startswith(layout.reference_dir(PRESET))
]


rule render_table:
    input:
        runs=lambda wildcards: run_metrics(table_cells(wildcards.n)),
        paper="report/paper_results.yaml",
    output:
        report(
            f"{OUT}/table{{n}}.tex",
            caption="../report/captions/table.rst",
            category="Tables",
            labels={"table": "Table {n}"},
        ),
    log:
        f"logs/render_table/{PRESET}/table{{n}}.log",
    conda:
        "../envs/report.yaml"
    params:
        **CAVEAT_PARAMS,
    shell:
        "python -m workflow_src.render.tables --table {wildcards.n:q} --output {output:q}"
        " --grid-json {params.grid:q} --paper {input.paper:q} --preset {params.preset:q}"
        " --encoder {params.encoder:q} --seeds {params.seeds} --epoch-scale {params.epoch_scale:q}"
        " --stage {params.stage:q} --runs {input.runs:q} > {log:q} 2>&1"


# results/table<N>.tex: the preset in force's table under the name the README promises. Its
# input path names the preset, so switching presets copies the other preset's table here.
rule copy_table:
    input:
        rules.render_table.output[0],
    output:
        "results/table{n}.tex",
    log:
        f"logs/copy_table/{PRESET}/table{{n}}.log",
    conda:
        "../envs/report.yaml"
    shell:
        "python -m workflow_src.atomic copy {input:q} {output:q} > {log:q} 2>&1"


# Within-epoch learning curves (metrics.json's `curve`, where runs record one) as one CSV.
rule collect_curves:
    input:
        run_metrics(ALL_CELLS),
    output:
        f"{OUT}/curves.csv",
    log:
        f"logs/collect_curves/{PRESET}.log",
    conda:
        "../envs/report.yaml"
    shell:
        "python -m workflow_src.analysis.curves --runs {input:q} --output {output:q}"
        " > {log:q} 2>&1"


rule render_report:
    input:
        metrics=rules.aggregate_metrics.output.metrics,
        summary=rules.aggregate_metrics.output.summary,
        epochs=rules.aggregate_metrics.output.epochs,
        curves=rules.collect_curves.output[0],
        # the claims and floors as rules/analysis.smk decided them
        claims_csv=rules.decide_claims.output.claims,
        floors_csv=rules.decide_claims.output.floors,
        paper="report/paper_results.yaml",
        claims="report/claims.yaml",
        # other shipped scales' claims (a second marker per row of the forest plot), and the
        # shipped reproduction of this preset (its seeds' spread flags the table cells)
        also=list(OTHER_SCALES.values()),
        shipped=SHIPPED_SUMMARY,
    output:
        html=report(
            f"{OUT}/report.html",
            caption="../report/captions/report.rst",
            category="Report",
            labels={"page": "reproduction report"},
        ),
        plots=report(
            directory(f"{OUT}/plots"),
            patterns=["{name}.png"],
            caption="../report/captions/plot.rst",
            category="Plots",
            labels={"plot": "{name}"},
        ),
        forest=multiext(f"{OUT}/claims", ".png", ".pdf"),
    log:
        f"logs/render_report/{PRESET}.log",
    conda:
        "../envs/report.yaml"
    params:
        **CAVEAT_PARAMS,
        pipeline_check="--pipeline-check" if PRESET_CONFIG.get("pipeline_check") else "",
        forest=lambda wildcards, output: os.path.splitext(output.forest[0])[0],
        also=[f"{name}={path}" for name, path in OTHER_SCALES.items()],
        cells=ALL_CELLS,
    shell:
        "python -m workflow_src.render.report --metrics-csv {input.metrics:q}"
        " --summary-csv {input.summary:q} --epochs-csv {input.epochs:q} --paper {input.paper:q}"
        " --curves-csv {input.curves:q} --claims-csv {input.claims_csv:q} --floors-csv {input.floors_csv:q}"
        " --claims {input.claims:q} --grid-json {params.grid:q} --preset {params.preset:q}"
        " --encoder {params.encoder:q} --seeds {params.seeds} --epoch-scale {params.epoch_scale:q}"
        " --stage {params.stage:q} --output {output.html:q} --plots-dir {output.plots:q}"
        " --forest {params.forest:q} --also-claims {params.also:q}"
        " --shipped-summary {input.shipped:q} --cells {params.cells:q} {params.pipeline_check}"
        " > {log:q} 2>&1"


# `snakemake report` builds the HTML report. The rule's name does not shadow Snakemake's
# report() flag, before or after this point: rules are registered under `rules.<name>`, not as
# globals (tests/test_report.py checks both `snakemake report` and `snakemake --report`).
rule report:
    input:
        rules.render_report.output.html,
