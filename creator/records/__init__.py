"""Records and text: what flows through the system, and the product text it is made from.

- ``types``: ads, users, history items, impressions, creatives; plain dataclasses with ``to_dict``/``from_dict``.
- ``errors``: ``DataError`` (file, line, field, expected, got, fix) and ``Problems`` (skip-and-record mode).
- ``text``: messy product text cleaned into selling points.
- ``facts``: the hard facts of a text (numbers with units, counts, model numbers, brand).
- ``rewrite``: rule-based title edits that add nothing (trim, hook, join).
"""
