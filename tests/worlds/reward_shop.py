"""Fixtures of the reward shop: a synthetic catalog where users each care about one or two topics.

Each topic has a handful of products; a user's history and next item come from their topics, so a click model
that reads title text can learn who clicks what. Also the judge's tiny training config and the users and ad its
tests score. Used by ``tests/creator/reward`` and ``tests/training``; registered in ``tests/conftest.py``.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOPICS: dict[str, list[str]] = {
    "fountain pens": [
        "Fountain Pen, Fine Nib, Blue Ink",
        "Fountain Pen Ink Bottle, Royal Blue, 50 ml",
        "Calligraphy Fountain Pen Set with 3 Nibs",
        "Fountain Pen Converter for Bottled Ink",
        "Broad Nib Fountain Pen, Black Lacquer",
        "Fountain Pen Ink Cartridges, Black, 12-Pack",
    ],
    "printer ink": [
        "Printer Ink Cartridge, Black, High Yield",
        "Color Inkjet Cartridges, Tri-Color, 2-Pack",
        "Laser Printer Toner Cartridge, Black",
        "Photo Printer Ink, 6 Colors",
        "Inkjet Refill Kit for Printers",
        "Toner Cartridge Twin Pack, Cyan and Magenta",
    ],
    "sticky notes": [
        "Sticky Notes, 3 x 3 in, Yellow, 12 Pads",
        "Neon Sticky Notes, Assorted Colors, 24 Pads",
        "Page Flags and Sticky Tabs, 200 Count",
        "Lined Sticky Notes, 4 x 6 in, 6 Pads",
        "Super Sticky Notes, Pastel Colors",
        "Sticky Note Dispenser with Pads",
    ],
    "desk organisers": [
        "Mesh Desk Organizer with 5 Compartments",
        "Bamboo Desk Organiser, Drawer Insert",
        "Desktop File Sorter, Black Mesh",
        "Pen Holder Cup, Metal Mesh",
        "Rotating Desk Caddy for Supplies",
        "Stackable Letter Trays, 3-Tier",
    ],
    "shipping supplies": [
        "Packing Tape, Clear, 6 Rolls",
        "Bubble Mailers, 6 x 10 in, 50-Pack",
        "Shipping Labels for Laser Printers, 100 Sheets",
        "Corrugated Shipping Boxes, 25-Pack",
        "Tape Dispenser Gun with 2 Rolls",
        "Padded Envelopes, Kraft, 25-Pack",
    ],
    "calculators": [
        "Scientific Calculator, 240 Functions",
        "Graphing Calculator, Color Display",
        "Desktop Calculator, Large Display, Solar",
        "Printing Calculator with Paper Roll",
        "Financial Calculator for Business",
        "Pocket Calculator, 8 Digits",
    ],
}
TINY_REWARD_NET = {
    "proj_dim": 16,
    "attn_hidden": 16,
    "mlp_hidden": [32],
    "dropout": 0.0,
    "max_history": 8,
    "token_buckets": 4096,
}


def write_shop(out: Path, *, n_users: int = 240, seed: int = 0, impressions: bool = False) -> Path:
    """Write the shop to ``out`` as our own JSONL records (``ads.jsonl``, ``users.jsonl``, optional
    ``impressions.jsonl``), so training goes through ``load_catalog`` like any real catalog. Each topic has a
    handful of products; each user has 4-7 history items from their one or two topics."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    ads, by_topic = [], {}
    for topic, titles in TOPICS.items():
        for title in titles:
            ad_id = f"a{len(ads)}"
            ads.append({"ad_id": ad_id, "title": title, "description": f"{title}. Great for {topic}.", "brand": "Acme"})
            by_topic.setdefault(topic, []).append((ad_id, title))
    topics = list(TOPICS)
    users, imps = [], []
    for i in range(n_users):
        liked = rng.sample(topics, rng.choice([1, 2]))
        pool = [x for t in liked for x in by_topic[t]]
        n = rng.randint(4, 7)
        hist = rng.sample(pool, min(n, len(pool)))
        users.append({"user_id": f"u{i}", "history": [{"item_id": a, "title": t} for a, t in hist]})
        if impressions:
            other = [x for t in topics if t not in liked for x in by_topic[t]]
            shown = [(rng.choice(pool), True)] + [(x, False) for x in rng.sample(other, 3)]
            imps += [
                {"user_id": f"u{i}", "ad_id": a, "clicked": c, "impression_id": f"i{i}"} for (a, _), c in shown
            ]
    for name, rows in (("ads", ads), ("users", users), ("impressions", imps)):
        if rows:
            (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.fixture(scope="session")
def reward_shop(tmp_path_factory) -> Callable[..., Path]:
    """``reward_shop(n_users=240, impressions=False)``: the shop's folder, written once per session for each
    set of arguments. Read it only: a test writes its runs under its own ``tmp_path``."""
    shops: dict[tuple[int, bool], Path] = {}

    def shop(n_users: int = 240, *, impressions: bool = False) -> Path:
        key = (n_users, impressions)
        if key not in shops:
            folder = tmp_path_factory.mktemp(f"shop{n_users}{'-imp' if impressions else ''}")
            shops[key] = write_shop(folder, n_users=n_users, impressions=impressions)
        return shops[key]

    return shop


@pytest.fixture
def tiny_reward_net() -> dict:
    """The network sizes (the config's ``model:`` section) of a judge small enough to train in seconds."""
    return copy.deepcopy(TINY_REWARD_NET)


@pytest.fixture(scope="session")
def reward_config() -> Callable[..., object]:
    """``reward_config(data, out, **overrides)``: ``training/configs/reward_tiny.yaml`` for the shop at ``data``,
    writing to ``out``, with the tiny network and a few epochs; keyword overrides win."""
    from creator.config import load
    from training.reward.config import RewardTrainConfig

    def config(data: Path, out: Path, **kw):
        overrides = {
            "data": str(data),
            "format": "jsonl",
            "out": str(out),
            "epochs": 8,
            "patience": 8,
            "batch_size": 256,
            "lr": 1e-2,
            "negatives": 4,
            "eval_negatives": 4,
            "threads": 1,
            "val_fraction": 0.15,
            "test_fraction": 0.2,
            "cache_dir": None,
            "model": dict(TINY_REWARD_NET),
            **kw,
        }
        return load(RewardTrainConfig, REPO / "training" / "configs" / "reward_tiny.yaml", **overrides)

    return config


@pytest.fixture
def fountain_user():
    """A shop user whose history is all fountain pens."""
    from creator.records.types import HistoryItem, User

    return User(
        "fan",
        [
            HistoryItem("h1", "Fountain Pen, Fine Nib, Blue Ink"),
            HistoryItem("h2", "Calligraphy Fountain Pen Set with 3 Nibs"),
            HistoryItem("h3", "Fountain Pen Ink Bottle, Royal Blue, 50 ml"),
        ],
    )


@pytest.fixture
def shipper():
    """A shop user whose history is all shipping supplies."""
    from creator.records.types import HistoryItem, User

    return User(
        "ship",
        [
            HistoryItem("s1", "Packing Tape, Clear, 6 Rolls"),
            HistoryItem("s2", "Bubble Mailers, 6 x 10 in, 50-Pack"),
            HistoryItem("s3", "Corrugated Shipping Boxes, 25-Pack"),
        ],
    )


@pytest.fixture
def notebook():
    """An ad outside the shop whose selling point speaks to fountain-pen users."""
    from creator.records.types import Ad

    return Ad(
        "nb",
        "Spiral Notebook, 100 Sheets, College Ruled",
        description="Spiral notebook with 100 sheets of smooth paper that does not bleed with fountain pen "
        "ink. College ruled.",
        selling_points=["smooth paper, no bleed with fountain pen ink"],
    )
