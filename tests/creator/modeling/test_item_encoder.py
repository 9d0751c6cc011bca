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


def test_cache_is_shared_safely_between_threads(tmp_path):
    """Gradio runs the demo's handlers on worker threads: one cache, used from each of them."""
    from concurrent.futures import ThreadPoolExecutor

    from creator.modeling.item_encoder import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")  # opened on this (the main) thread

    def work(t: int) -> int:
        for i in range(20):
            key = EmbeddingCache.key("m", f"{t}-{i}")
            cache.put_many({key: np.full(4, t + i, dtype=np.float32)})
            got = cache.get_many([key])
            assert got[key][0] == t + i
        return len(cache)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(8)))
    assert len(cache) == 8 * 20
    cache.close()


def test_encoder_with_a_cache_encodes_from_several_threads(tmp_path, minilm):
    import copy
    from concurrent.futures import ThreadPoolExecutor

    from creator.modeling.item_encoder import EmbeddingCache

    enc = copy.copy(minilm)  # the same frozen model, without loading it twice, with a cache of its own
    enc.cache, enc.stats = EmbeddingCache(tmp_path / "embeddings.sqlite"), {"computed": 0, "cached": 0}
    texts = [f"Gel pens, {n} colors" for n in range(6)]
    want = minilm.encode(texts)
    with ThreadPoolExecutor(max_workers=3) as pool:
        outs = list(pool.map(lambda i: enc.encode(texts[i:] + texts[:i]), range(6)))
    for i, out in enumerate(outs):
        np.testing.assert_allclose(out, np.roll(want, -i, axis=0), atol=1e-5)
