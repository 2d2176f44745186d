"""Inputs: download and verify the data and encoders, read rows, tokenise, plan batches.

Never imports workflow_src.train."""
