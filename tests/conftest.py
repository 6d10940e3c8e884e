"""Test-wide settings: one torch thread per test process.

The suite runs in 2 xdist workers on 2 cores; torch's default of one thread per core in each
worker (and in the subprocesses tests start, which inherit OMP_NUM_THREADS) oversubscribes the
cores, and spinning OpenMP threads then slow small models down by 10-50x.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)
