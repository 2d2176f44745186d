"""Training: the model and heads, SMART, the BiLSTM, the loop (loop.py) with what it is built
from (build.py), its state across a kill (state.py), evaluation (evaluate.py), the run record
(record.py), learning curves (curve.py), checkpoints and submission files.

`python -m workflow_src.train` runs one cell at one seed (see __main__.py)."""
