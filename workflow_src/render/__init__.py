"""What people read: LaTeX tables, the HTML report, plots, README blocks, shipped references.

CSVs in, pages out; no statistics, no torch."""
