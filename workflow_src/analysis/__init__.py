"""Numbers and verdicts from finished runs: metrics, aggregate, claims, floors.

Run folders in, CSVs out; no torch, no rendering."""
