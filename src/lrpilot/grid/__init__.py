"""The runs of one task and budget in one store: :mod:`.runner` (``bench``, ``Grid``), :mod:`.jobs` (what a worker
runs), :mod:`.claims` (the claim loop), :mod:`.racing` (successive halving and seed racing)."""
