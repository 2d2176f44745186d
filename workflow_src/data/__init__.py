"""Inputs: download and verify the data and encoders, read rows, tokenise, plan batches, and a
training run's prepared rows (prepare.py).

Never imports workflow_src.train (tests/test_architecture.py)."""
