"""Where training runs: executors (in-process, local worker processes, Ray, ``torch.distributed`` ranks),
snapshots that carry a run between them, and synchronous data-parallel training."""
