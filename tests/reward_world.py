"""A synthetic shop for reward-model tests: users who each care about one or two topics.

Each topic has a handful of products; a user's history and next item come from their topics,
so a click model that reads title text can learn who clicks what. Written as our own JSONL
records (``ads.jsonl``, ``users.jsonl``, optional ``impressions.jsonl``) so training goes through
``load_catalog`` like any real catalog. Also the tiny training config, users and ad the reward tests share.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from creator.config import load
from creator.records.types import Ad, HistoryItem, User
from training.reward.config import RewardTrainConfig

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


def write_world(out: Path, *, n_users: int = 240, seed: int = 0, impressions: bool = False) -> Path:
    """Write the shop to ``out`` and return it. Each user has 4-7 history items from their topics."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    ads, by_topic = [], {}
    for topic, titles in TOPICS.items():
        for title in titles:
            ad_id = f"a{len(ads)}"
            ads.append(
                {
                    "ad_id": ad_id,
                    "title": title,
                    "description": f"{title}. Great for {topic}.",
                    "brand": "Acme",
                }
            )
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
                {"user_id": f"u{i}", "ad_id": a, "clicked": c, "impression_id": f"i{i}"}
                for (a, _), c in shown
            ]
    for name, rows in (("ads", ads), ("users", users), ("impressions", imps)):
        if rows:
            (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


TINY_MODEL = {
    "proj_dim": 16,
    "attn_hidden": 16,
    "mlp_hidden": [32],
    "dropout": 0.0,
    "max_history": 8,
    "token_buckets": 4096,
}
REPO = Path(__file__).resolve().parents[1]


def tiny_config(data: Path, out: Path, **kw):
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
        "model": dict(TINY_MODEL),
        **kw,
    }
    return load(RewardTrainConfig, REPO / "training" / "configs" / "reward_tiny.yaml", **overrides)


def fountain_user() -> User:
    return User(
        "fan",
        [
            HistoryItem("h1", "Fountain Pen, Fine Nib, Blue Ink"),
            HistoryItem("h2", "Calligraphy Fountain Pen Set with 3 Nibs"),
            HistoryItem("h3", "Fountain Pen Ink Bottle, Royal Blue, 50 ml"),
        ],
    )


def shipper() -> User:
    return User(
        "ship",
        [
            HistoryItem("s1", "Packing Tape, Clear, 6 Rolls"),
            HistoryItem("s2", "Bubble Mailers, 6 x 10 in, 50-Pack"),
            HistoryItem("s3", "Corrugated Shipping Boxes, 25-Pack"),
        ],
    )


NOTEBOOK = Ad(
    "nb",
    "Spiral Notebook, 100 Sheets, College Ruled",
    description="Spiral notebook with 100 sheets of smooth paper that does not bleed with fountain pen "
    "ink. College ruled.",
    selling_points=["smooth paper, no bleed with fountain pen ink"],
)
