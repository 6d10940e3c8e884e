"""Layer 2: controllers, online rules that watch training and set the LR."""

from lrpilot.controllers import autodrop, factor  # noqa: F401  (register "autodrop" and "factor")
