"""The demo's Generate / Regenerate one segment / Regenerate all through Gradio, whose handlers run on
worker threads, with models that embed through a real on-disk ``EmbeddingCache`` (MiniLM), as the trained
user model and judge do: ten clicks of each, from two tabs at once, and no error.

The stand-in models of ``tests/demo_doubles.py`` have no cache, so the browser test cannot see a cache that
is bound to the thread that opened it (``sqlite3.ProgrammingError``, about one Regenerate in three).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
pytest.importorskip("creator.pipeline.catalog")

from app.demo_catalog import load_sample  # noqa: E402
from creator.io import Catalog  # noqa: E402
from creator.modeling.item_encoder import EmbeddingCache  # noqa: E402
from tests.demo_doubles import DoubleParts, sigmoid_match  # noqa: E402

AD = "1002"
FORM = (120, "", 3, 0.0, 2)  # max chars, banned words, segments, match threshold, candidates
CLICKS = 10


class CachedMiniLMUserModel:
    """User vector = mean MiniLM vector of the history titles, every text through the shared disk cache."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder

    def embed_users(self, users, *, batch_size=256, progress=False):
        return np.stack([self.encoder.encode(u.history_titles or ["(none)"]).mean(0) for u in users])

    def embed_items(self, texts):
        return self.encoder.encode(list(texts))

    def match(self, user_vecs, ad_vecs):
        return sigmoid_match(user_vecs, ad_vecs)


class CachedParts(DoubleParts):
    description = "TEST DOUBLES with a real MiniLM embedding cache"

    def __init__(self, encoder) -> None:
        super().__init__()
        self.user_model = CachedMiniLMUserModel(encoder)


def small_sample() -> Catalog:
    cat = load_sample()
    users = dict(list(cat.users.items())[:120])
    return Catalog(ads=cat.ads, users=users, source=cat.source, format=cat.format)


@pytest.fixture(scope="module")
def app_url(minilm, tmp_path_factory):
    import socket

    from app.demo import build_app

    encoder = copy.copy(minilm)  # the loaded MiniLM, with a cache of its own opened on this thread
    encoder.cache = EmbeddingCache(tmp_path_factory.mktemp("demo-cache") / "embeddings.sqlite")
    encoder.stats = {"computed": 0, "cached": 0}
    demo = build_app(CachedParts(encoder), catalog_loader=small_sample)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", encoder
    demo.close()


def clicks(url: str) -> list[str]:
    """One tab: load, pick, then Generate, Regenerate one segment and Regenerate all, ten times each."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    statuses = [client.predict(api_name="/load_sample")[0], client.predict(AD, api_name="/pick_ad")[0]]
    for i in range(CLICKS):
        statuses.append(client.predict(AD, *FORM, api_name="/generate")[0])
        statuses.append(client.predict(i % FORM[2], *FORM, api_name="/regenerate")[0])
        statuses.append(client.predict(*FORM, api_name="/regenerate_all")[0])
    return statuses


def test_generate_and_regenerate_with_a_disk_cache_never_fail(app_url):
    url, encoder = app_url
    with ThreadPoolExecutor(max_workers=2) as pool:  # two tabs clicking at the same time
        tabs = list(pool.map(clicks, [url, url]))
    for statuses in tabs:
        assert len(statuses) == 2 + 3 * CLICKS
        failed = [s for s in statuses if "went wrong" in s or "Cannot do that" in s]
        assert not failed, failed[:3]
        assert sum(s.startswith("Generated for") for s in statuses) == CLICKS
        assert sum(s.startswith("Regenerated segment") for s in statuses) == 2 * CLICKS
    assert encoder.stats["cached"] > 0 and len(encoder.cache) == encoder.stats["computed"]
