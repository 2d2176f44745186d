"""Reproducibility package for "Multi-Task Learning with BERT" (CS224N): the code the Snakemake rules call."""
