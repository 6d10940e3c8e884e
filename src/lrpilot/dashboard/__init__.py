"""``lrpilot dashboard``: the read-only web app over the results store (:mod:`.app`, Starlette; extra
``dashboard``), a thin front over :mod:`lrpilot.present`."""
