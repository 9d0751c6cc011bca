"""The train-encoders verb end to end on a small synthetic catalog, plus its config and evaluation pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.encoders.config import EncodersConfig
from training.encoders.ranking import (
    mean_history_scores,
    paired_bootstrap,
    ranking_metrics,
    split_users,
    target_ranks,
)

REPO = Path(__file__).resolve().parents[3]
TOPICS = {
    "pen": [
        "Gel pens, {n} colors",
        "Ballpoint pens, blue ink, {n}-pack",
        "Fine liner pens set of {n}",
        "Fountain pen with {n} cartridges",
        "Highlighter pens, {n} pastel colors",
    ],
    "ink": [
        "HP {n} black ink cartridge",
        "Canon {n} color ink tank",
        "Epson {n} photo ink, cyan",
        "Brother toner cartridge TN-{n}",
        "Remanufactured ink for HP {n}XL",
    ],
    "paper": [
        "Copy paper, {n} sheets, letter",
        "Cardstock paper, {n} sheets, white",
        "Sticky notes 3 x 3 in, {n} pads",
        "Legal pads, yellow, {n}-pack",
        "Index cards, {n} count",
    ],
}


def write_catalog(folder: Path, n_users: int = 90, seed: int = 0) -> Path:
    """Ads from three topics; each user keeps to one topic (so history predicts the next item)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ads = []
    for topic, templates in TOPICS.items():
        for t, tpl in enumerate(templates):
            for n in (2, 4, 8, 12):
                ads.append(
                    {"ad_id": f"{topic}-{t}-{n}", "title": tpl.format(n=n), "description": tpl.format(n=n)}
                )
    by_topic = {k: [a for a in ads if a["ad_id"].startswith(k)] for k in TOPICS}
    users = []
    for u in range(n_users):
        pool = by_topic[list(TOPICS)[u % 3]]
        picks = rng.choice(len(pool), size=int(rng.integers(4, 8)), replace=False)
        users.append(
            {
                "user_id": f"u{u}",
                "history": [{"item_id": pool[i]["ad_id"], "title": pool[i]["title"]} for i in picks],
            }
        )
    (folder / "ads.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ads))
    (folder / "users.jsonl").write_text("".join(json.dumps(u) + "\n" for u in users))
    return folder


def test_config_rejects_unknown_fields_and_bad_values(tmp_path):
    from creator.config import ConfigError, parse

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    with pytest.raises(ConfigError, match="epochz"):
        parse([EncodersConfig], ["--config", str(bad)])
    bad.write_text("lr: 1e-3\nepochs: 3\n")  # YAML reads 1e-3 as a string: the parser converts it
    (cfg,) = parse([EncodersConfig], ["--config", str(bad), "--epochs", "2"])
    assert cfg.lr == 1e-3 and cfg.epochs == 2
    with pytest.raises(ValueError, match="sum below 1"):
        EncodersConfig(validation_fraction=0.6, test_fraction=0.6)


def test_train_encoders_cli_end_to_end(tmp_path, minilm):
    from app.cli import main as cli
    from creator.modeling.user_model import UserModel
    from creator.records.types import HistoryItem, User
    from creator.segments.matching import match_scores, prune_pairs

    data = write_catalog(tmp_path / "data")
    out = tmp_path / "out"
    rc = cli(
        [
            "train-encoders",
            "--config",
            str(REPO / "training/configs/encoders_tiny.yaml"),
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--epochs",
            "3",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"popularity", "mean_history_cosine", "user_encoder"}
    for m in metrics["test"].values():
        assert 0 <= m["recall@10"] <= m["recall@50"] <= 1
    assert 0.5 < metrics["match_head"]["test_auc"] <= 1.0  # topics make positives easy to tell apart
    assert metrics["training"]["loss"][-1] < metrics["training"]["loss"][0]
    resolved = (out / "resolved_config.yaml").read_text()
    assert "epochs: 3" in resolved and "hidden: 32" in resolved
    assert "Recall@10" in (out / "README.md").read_text()

    model = UserModel.from_pretrained(out / "user_model", item_encoder=minilm)
    users = [
        User("a", [HistoryItem("x", "Gel pens, 4 colors"), HistoryItem("y", "Fine liner pens set of 8")]),
        User("cold", []),
    ]
    vecs = model.embed_users(users)
    assert vecs.shape == (2, model.dim) and np.isfinite(vecs).all()
    ads = model.embed_items(["Ballpoint pens, blue ink, 12-pack", "HP 8 black ink cartridge"])
    scores = match_scores(model, vecs, ads)
    assert scores.shape == (2, 2) and ((scores >= 0) & (scores <= 1)).all()
    assert prune_pairs(scores, threshold=None, top_m=1).sum() == 2


def test_split_is_by_user_and_stable():
    ids = [f"u{i}" for i in range(2000)]
    a = split_users(ids, validation=0.1, test=0.2, seed=3)
    assert a == split_users(reversed(ids), validation=0.1, test=0.2, seed=3)
    share = {s: sum(v == s for v in a.values()) / len(ids) for s in ("train", "validation", "test")}
    assert abs(share["test"] - 0.2) < 0.03 and abs(share["validation"] - 0.1) < 0.03
    assert a != split_users(ids, validation=0.1, test=0.2, seed=4)


def test_ranks_count_ties_half_and_metrics_by_hand():
    """Scores [3, 1, 1, 1]: target 0 has rank 0; target 1 has 1 better and 2 equal others -> 1 + 1 = 2."""
    scores = torch.tensor([[3.0, 1.0, 1.0, 1.0], [3.0, 1.0, 1.0, 1.0]])
    ranks = target_ranks(scores, torch.tensor([0, 1]))
    assert ranks.tolist() == [0.0, 2.0]
    m = ranking_metrics(ranks)
    assert m["recall@10"] == 1.0 and abs(m["ndcg@10"] - (1 + 1 / np.log2(4)) / 2) < 1e-12


def test_mean_history_baseline_ranks_the_nearest_item_first():
    V = torch.eye(4)
    scores = mean_history_scores(V, np.array([[0, 1, -1]]))
    assert scores.argmax().item() in (0, 1) and scores[0, 2] == 0 and abs(scores[0, 0] - 2**-0.5) < 1e-6


def test_paired_bootstrap_interval_contains_the_mean_and_moves_with_groups():
    rng = np.random.default_rng(0)
    a, b = rng.random(400) + 0.1, rng.random(400)
    mean, lo, hi = paired_bootstrap(a, b, np.repeat(np.arange(100), 4))
    assert lo < mean < hi and lo > 0


@pytest.mark.shared_data
def test_office_products_split_is_by_user_and_keeps_every_row(amazon_dir):
    """On the real data: no user in two splits, and the three splits' rows are exactly the catalog's rows."""
    from creator.io import load_catalog
    from training.encoders.next_item import make_rows
    from training.encoders.train import item_table

    catalog = load_catalog(amazon_dir, "amazon2018")
    ids, texts = item_table(catalog)
    assert len(ids) == len(set(ids)) == len(texts) >= len(catalog.ads)
    index = {i: k for k, i in enumerate(ids)}
    split = split_users(catalog.users, validation=0.1, test=0.1, seed=0)
    n_rows = 0
    for name in ("train", "validation", "test"):
        users = [u for u in catalog.users.values() if split[u.user_id] == name]
        seqs = [[index[h.item_id] for h in u.history] for u in users]
        n_rows += len(make_rows(seqs, max_len=50))
    assert n_rows == sum(1 for _ in catalog.next_item_rows())
    assert all(sum(v == s for v in split.values()) > 200 for s in ("train", "validation", "test"))
