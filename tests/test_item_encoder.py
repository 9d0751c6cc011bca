"""The offline MiniLM item encoder: real embeddings, batched, cached so a rerun embeds nothing twice."""

import numpy as np

from creator.modeling.item_encoder import SentenceItemEncoder


def test_minilm_embeddings_are_meaningful(minilm):
    v = minilm.encode(
        ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.6 > 0.1 > v[0] @ v[2]


def test_cache_means_a_rerun_computes_nothing(tmp_path):
    texts = ["Gel pens, 12 colors", "Stapler, 20 sheets", "Gel pens, 12 colors"]
    first = SentenceItemEncoder(cache_dir=tmp_path)
    a = first.encode(texts)
    assert first.stats == {"computed": 2, "cached": 0}  # the duplicate is embedded once
    second = SentenceItemEncoder(cache_dir=tmp_path)
    b = second.encode(texts + ["Tape"])
    assert second.stats == {"computed": 1, "cached": 2}
    np.testing.assert_array_equal(a, b[:3])


def test_cache_is_keyed_by_model_name(tmp_path):
    from creator.modeling.item_encoder import EmbeddingCache

    assert EmbeddingCache.key("minilm", "x") != EmbeddingCache.key("other-model", "x")
