"""The guard: every title checked against its ad before it is served or trained on.

- ``check``: ``Guard``, the verdict of all rules on one title.
- ``grounding``: the default fact checker (numbers, units, model numbers, brands, claims).
- ``banned_attributes``: personal attributes a title must never state or imply about its reader.
- ``editorial``: the platforms' copy rules (Google Ads editorial, Meta personal attributes).
- the ``disfluent`` rule takes a fluency gate (``creator.modeling.fluency``: readability under a reference LM).
"""
