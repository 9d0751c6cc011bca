"""Match head and pruning: exact keep-masks, two obvious clusters separated, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from creator.modeling.match_head import MatchHead, MatchHeadConfig
from creator.reward.metrics import ece
from creator.segments.matching import match_scores, prune_pairs
from training.encoders.next_item import match_pairs, train_match_head

SCORES = np.array([[0.9, 0.2, 0.6, 0.6], [0.1, 0.8, 0.7, 0.3], [0.5, 0.5, 0.5, 0.4]])


def test_prune_threshold_only_removes_exactly_the_pairs_below():
    keep = prune_pairs(SCORES, threshold=0.6, top_m=None)
    assert (keep == (SCORES >= 0.6)).all()
    assert keep.sum() == 5


def test_prune_top_m_keeps_exactly_m_per_row_ties_by_index():
    keep = prune_pairs(SCORES, threshold=None, top_m=2)
    assert keep.astype(int).tolist() == [
        [1, 0, 1, 0],  # 0.6 tie: the lower index survives
        [0, 1, 1, 0],
        [1, 1, 0, 0],
    ]  # three-way tie at 0.5: first two by index
    assert (keep.sum(1) == 2).all()


def test_prune_both_rules_and_columns():
    keep = prune_pairs(SCORES, threshold=0.55, top_m=2)
    assert keep.astype(int).tolist() == [[1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    by_ad = prune_pairs(SCORES, threshold=None, top_m=1, axis=0)
    assert by_ad.astype(int).tolist() == [[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert prune_pairs(SCORES, threshold=None, top_m=None).all()
    assert not prune_pairs(SCORES, threshold=None, top_m=0).any()


def test_prune_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        prune_pairs(np.zeros(3), threshold=0.5, top_m=None)
    with pytest.raises(ValueError, match="NaN"):
        prune_pairs(np.array([[np.nan]]), threshold=0.5, top_m=None)


def _two_clusters(n: int = 60, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a, b = F.normalize(torch.randn(2, dim, generator=g), dim=-1)
    users = torch.cat(
        [a + 0.1 * torch.randn(n, dim, generator=g), b + 0.1 * torch.randn(n, dim, generator=g)]
    )
    items = torch.cat(
        [a + 0.1 * torch.randn(20, dim, generator=g), b + 0.1 * torch.randn(20, dim, generator=g)]
    )
    return F.normalize(users, dim=-1), F.normalize(items, dim=-1)


def test_match_head_separates_two_obvious_clusters():
    """Cluster-A users take cluster-A items; after training A-users score A-items above B-items."""
    torch.manual_seed(0)
    users, items = _two_clusters()
    rng = np.random.default_rng(0)
    targets = np.where(np.arange(120) < 60, rng.integers(0, 20, 120), rng.integers(20, 40, 120))
    head = MatchHead(8, 8, MatchHeadConfig(hidden=16, negatives=8, dropout=0.0))
    losses = train_match_head(head, users, items, targets, epochs=15, batch_size=128, lr=5e-3)
    assert losses[-1] < losses[0] * 0.7
    with torch.no_grad():
        p = torch.sigmoid(head.pairwise_logits(users, items))  # (120, 40)
    same = torch.cat([p[:60, :20].flatten(), p[60:, 20:].flatten()])
    other = torch.cat([p[:60, 20:].flatten(), p[60:, :20].flatten()])
    assert same.min() > other.max()


def test_platt_scaling_calibrates_and_match_scores_uses_it():
    """Logits that are 3x too confident: Platt fitting should recover a ~ 1/3 and cut the ECE."""
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 1.5, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    head = MatchHead(4, 4)
    a, b = head.fit_platt(3 * true_logit, labels)
    assert abs(a - 1 / 3) < 0.03 and abs(b) < 0.1
    raw = 1 / (1 + np.exp(-3 * true_logit))
    cal = head.calibrate(torch.as_tensor(3 * true_logit, dtype=torch.float32)).numpy()
    assert ece(labels, cal) < ece(labels, raw) / 3

    class Bundle:  # match_scores only needs .match_head
        match_head = head

    s = match_scores(Bundle(), np.random.rand(3, 4), np.random.rand(5, 4))
    assert s.shape == (3, 5) and s.dtype == np.float32 and ((s > 0) & (s < 1)).all()
    with pytest.raises(ValueError, match="user_vecs"):
        match_scores(Bundle(), np.random.rand(3, 7), np.random.rand(5, 4))


def test_match_pairs_layout():
    rng = np.random.default_rng(0)
    u, a, y = match_pairs(torch.randn(3, 4), torch.randn(10, 4), np.array([1, 2, 3]), 8, rng)
    assert u.shape == (27, 4) and a.shape == (27, 4)
    assert y.view(3, 9)[:, 0].tolist() == [1, 1, 1] and y.sum() == 3


def test_ece_hand_computed():
    """Two bins: probs 0.1 (labels 0, 0) and 0.9 (labels 1, 0): |0 - 0.1| * 0.5 + |0.5 - 0.9| * 0.5 = 0.25."""
    assert abs(ece(np.array([0, 0, 1, 0]), np.array([0.1, 0.1, 0.9, 0.9])) - 0.25) < 1e-9
