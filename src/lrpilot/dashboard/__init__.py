"""A read-only web dashboard over the results store (``lrpilot dashboard``), and the views, templates and figures
that ``lrpilot report`` renders too: :mod:`.views` (what each page shows), :mod:`.figures` (matplotlib as inline
SVG), :mod:`.render` (the Jinja2 templates), :mod:`.app` (the Starlette app; extra ``dashboard``)."""
