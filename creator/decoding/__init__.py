"""Grounded decoding: the generator may only write words the ad itself contains.

- ``words``: ``WordConstraint``, which tokens may come next.
- ``logits``: that constraint as logits masks, in the forms decoding engines take.
- ``vllm``: the constraint inside vLLM's V1 engine, as a logits processor (vLLM imported lazily).
"""
