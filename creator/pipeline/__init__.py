"""The catalog job: segments -> pruned pairs -> generation -> guard -> creatives, in resumable shards.

- ``catalog``: ``generate_for_catalog``, one stage per block.
- ``shards``: sharded, resumable output with a manifest.
- ``result``: what a run produces and writes (``RunSummary``, ``CatalogResult``, coverage).
"""
