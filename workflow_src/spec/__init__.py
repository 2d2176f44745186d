"""What the study is: tasks, the grid of cells and tables, settings, paths, cost. No torch."""
