"""``lrpilot report``: a task's benchmark as one HTML or Markdown file, a thin front over :mod:`lrpilot.present`."""
