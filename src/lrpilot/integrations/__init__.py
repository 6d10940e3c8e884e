"""Integrations with training frameworks: each module imports its framework, an extra of lrpilot's."""
