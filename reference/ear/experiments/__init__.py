"""Experiments on the reference EAR (ablations of the paper's findings)."""
