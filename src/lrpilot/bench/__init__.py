"""The strategies over the grid: the LR range test, tune and its search space, suites, recommendation."""
