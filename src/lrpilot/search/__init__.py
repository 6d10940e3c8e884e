"""Layer 3: searches that branch training and keep a winner: STPT (``stpt(...)``) and the ALR beam tree
(``alr(...)``). Run one with :func:`lrpilot.search.run.run_search` or ``lrpilot train --policy``."""
