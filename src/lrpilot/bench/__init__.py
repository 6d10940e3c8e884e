"""Layer 4: benchmarks, ranking, the LR range test and recommendation."""
