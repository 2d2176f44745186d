# A finished reproduction shipped with the package, and rendered again from it.
#
#   snakemake --config preset=cpu ship_reference=True          ship: reference/cpu/
#   snakemake --config preset=cpu runs_from=reference/cpu/runs  tables, claims, report from the
#                                                               shipped runs, training nothing
#
# Shipping (ship_reference) copies each run's metrics.json and predictions.csv into
# reference/<preset>/runs/ (ship_run: from the preset's own runs, trained first where missing,
# or from runs_from), renders every derived output into reference/<preset>/ from those copies
# (RUNS and OUT in common.smk), and writes PROVENANCE.json: the one training commit, the
# machines the runs report and the checkout and machine that shipped them. Rendering reads the
# shipped copies as it reads fresh runs, so a second render gives the same tables byte for byte.


if PATHS.ship_from:

    localrules:
        ship_run,

    rule ship_run:
        input:
            metrics=f"{PATHS.ship_from}/{{cell}}/seed{{seed}}/metrics.json",
            predictions=f"{PATHS.ship_from}/{{cell}}/seed{{seed}}/predictions.csv",
        output:
            metrics=f"{RUNS}/{{cell}}/seed{{seed}}/metrics.json",
            predictions=f"{RUNS}/{{cell}}/seed{{seed}}/predictions.csv",
        log:
            f"logs/ship_run/{PRESET}/{{cell}}/seed{{seed}}.log",
        conda:
            "../envs/report.yaml"
        shell:
            "(python -m workflow_src.atomic copy {input.predictions:q} {output.predictions:q}"
            " && python -m workflow_src.atomic copy {input.metrics:q} {output.metrics:q}) > {log:q} 2>&1"


if config["ship_reference"]:

    localrules:
        ship_provenance,

    rule ship_provenance:
        input:
            run_metrics(ALL_CELLS),
        output:
            SHIP_PROVENANCE,
        log:
            f"logs/ship_provenance/{PRESET}.log",
        conda:
            "../envs/report.yaml"
        params:
            preset=PRESET,
            # the --configfile overlays in force, so that PROVENANCE's render command repeats them
            overlays=" ".join(
                f"--configfile {shlex.quote(os.path.relpath(path))}"
                for path in workflow.overwrite_configfiles
            ),
        shell:
            "python -m workflow_src.render.reference --preset {params.preset:q} --runs {input:q}"
            " {params.overlays} --output {output:q} > {log:q} 2>&1"
