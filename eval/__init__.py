"""Offline evaluation: metrics, the pairwise judge and the report."""
