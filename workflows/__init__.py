"""Deterministic workflow code: what happens to a screening, and when."""
