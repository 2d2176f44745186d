# Reproduction of "Multi-Task Learning with BERT" (CS224N default project) as one DAG.
#
#   snakemake --cores 2                      whole DAG at the preset in force (config.yaml: quick)
#   snakemake --cores 4 --profile slurm      paper preset on a Slurm GPU cluster (./slurm/)
#   snakemake results/table9.tex             one table and only the runs it needs
#   snakemake report                         results/report.html
#   snakemake cost                           training examples and compute hours, before any run
#
# Paths (<preset> is config["preset"], so presets never overwrite each other's runs):
#   data/cs224n/<file>.csv, PROVENANCE.json                 verified downloads
#   results/runs/<preset>/<cell>/seed<seed>/metrics.json     one training run (+ predictions.csv)
#   results/benchmarks/<preset>/<cell>/seed<seed>.tsv        Snakemake's benchmark of that run
#   results/metrics.csv, results/summary.csv                 all runs, and per-cell statistics
#   results/table1.tex .. results/table9.tex, report.html    what people read
#   logs/<rule>/...                                          one log per job


from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


rule all:
    default_target: True
    input:
        expand("results/table{n}.tex", n=range(1, 10)),
        "results/metrics.csv",
        "results/summary.csv",
        "results/report.html",


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"
include: "rules/report.smk"
include: "rules/cost.smk"
