"""Tasks at reduced budgets for benchmarks/decision_quality.py, where the full budget does not fit the machine.

``--task decision_tasks:mnist1d_cnn_30`` (the benchmark puts this folder on the workers' path): mnist1d-cnn
with 30 epochs instead of 100, under its own name, so that its runs are never mixed with the full task's.
"""

from lrpilot.tasks.builtin import make_mnist1d_cnn


def mnist1d_cnn_30():
    task = make_mnist1d_cnn()
    task.name, task.epochs = "mnist1d-cnn-30", 30
    task.meta = {**task.meta, "dataset": "mnist1d"}
    return task
