# Reproduction of "Multi-Task Learning with BERT" (CS224N default project) as one DAG.
#
#   snakemake --cores 2                      whole DAG at the preset in force (config.yaml: quick)
#   snakemake --cores 4 --profile slurm      paper preset on a Slurm GPU cluster (./slurm/)
#   snakemake results/table9.tex             one table and only the runs it needs
#   snakemake report                         results/<preset>/report.html
#   snakemake cost                           training examples and compute hours, before any run
#   snakemake --config ship_reference=True   ship the preset's runs and renders in reference/<preset>/
#   snakemake --config runs_from=DIR         render from finished runs in DIR, training nothing
# (profiles/default/ gives the local cores, so no command needs --cores.)
#
# Paths (<preset> is config["preset"]: presets never overwrite each other's runs or tables):
#   data/cs224n/<file>.csv, PROVENANCE.json                 verified downloads
#   models/<name>/, PROVENANCE.json                          a hub encoder at its pinned revision
#   results/tokens/<preset>/tokenizer/, <task>-<enc>.npz     the tokenizer, tokenised splits
#   results/runs/<preset>/<cell>/seed<seed>/metrics.json     one training run (+ predictions.csv)
#   results/benchmarks/<preset>/<cell>/seed<seed>.tsv        Snakemake's benchmark of that run
#   results/<preset>/metrics.csv, epochs.csv, summary.csv    all runs, and per-cell statistics
#   results/<preset>/claims.csv, floors.csv                  the claims decided, the floors
#   results/<preset>/table1.tex .. table9.tex, report.html, plots/   what people read
#   results/table<N>.tex                                     copy of the preset in force's table
#   logs/<rule>/<preset>/...                                 one log per job
#   reference/<preset>/runs/<cell>/seed<seed>/, PROVENANCE.json, and the CSVs, tables, report and
#                      plots rendered from them              a reproduction shipped in the package


import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, workflow.basedir)

from workflow_src.spec.schema import ConfigError, validate_config


configfile: "config.yaml"


# The schema's defaults filled in; a bad key stops here with one line naming it (not the whole
# schema, as snakemake.utils.validate's error prints it).
try:
    validate_config(config, "schemas/config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None


report: "report/workflow.rst"


include: "rules/common.smk"


rule all:
    default_target: True
    input:
        expand(f"{OUT}/table{{n}}.tex", n=TABLE_NUMBERS),
        f"{OUT}/metrics.csv",
        f"{OUT}/summary.csv",
        f"{OUT}/report.html",
        SHIP_PROVENANCE,


include: "rules/data.smk"
include: "rules/tokens.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"
include: "rules/cost.smk"
include: "rules/reference.smk"
