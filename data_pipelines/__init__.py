"""Data entry points: inspect/convert catalogs, teacher clients, CoT dataset builder, preference pairs."""
