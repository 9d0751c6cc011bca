"""Metric classes: factuality, compliance, personalization, diversity, reference overlap."""
