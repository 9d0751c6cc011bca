"""Audience segments: who gets a title.

- ``clustering``: k-means over user vectors, one representative per segment.
- ``matching``: the match model's scores and the pruning of (segment, ad) pairs under a call budget.
"""
