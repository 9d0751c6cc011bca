"""Regression: the item encoder's on-disk cache is used from the first text on (an empty cache is falsy)."""

from __future__ import annotations

import numpy as np


def test_second_encode_comes_from_the_cache(minilm):
    before = dict(minilm.stats)
    first = minilm.encode(["A text no other test embeds: violet stapler 77"])
    second = minilm.encode(["A text no other test embeds: violet stapler 77"])
    assert minilm.stats["computed"] - before["computed"] == 1
    assert minilm.stats["cached"] - before["cached"] == 1
    np.testing.assert_array_equal(first, second)
