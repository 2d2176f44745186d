"""Training: the model and heads, SMART, the BiLSTM, the loop, checkpoints, prediction.

`python -m workflow_src.train` runs one cell at one seed (see __main__.py)."""
