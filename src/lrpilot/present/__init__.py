"""What lrpilot shows, whatever the front: the pages' data (:mod:`.views`), the matplotlib figures (:mod:`.plots`,
:mod:`.figures`: inline SVG), the Jinja2 templates (:mod:`.render`, ``templates/``) and the terminal tables
(:mod:`.tables`). The dashboard, the report and the CLI are thin fronts over it."""
