"""``python -m lrpilot``: the command line (also what ``torchrun -m lrpilot`` starts on every rank)."""

import sys

from lrpilot.cli import main

if __name__ == "__main__":
    sys.exit(main())
