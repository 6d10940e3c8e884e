"""Figures and reports (matplotlib, headless)."""
