"""Held-out evaluation of next-item models: split by user, full-catalog ranking, baselines, bootstrap.

Every method ranks the whole catalog for each held-out row (no sampled candidates, nothing masked),
so the popularity baseline, the zero-shot mean-of-history baseline and the trained encoder face the
same candidates. Ties count half (the expected rank under random tie-breaking), which matters for
popularity where many items share a count.

    >>> ranks = np.array([0.0, 3.0, 60.0])
    >>> {k: round(v, 4) for k, v in ranking_metrics(ranks).items()}
    {'recall@10': 0.6667, 'recall@50': 0.6667, 'ndcg@10': 0.4769}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

SPLITS = ("train", "validation", "test")


def split_users(user_ids: Iterable[str], *, validation: float, test: float, seed: int) -> dict[str, str]:
    """user id -> train | validation | test by seeded hash, stable across runs and machines; never by row."""
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ValueError(
            f"validation ({validation}) and test ({test}) fractions must be in (0, 1) and sum "
            "below 1; e.g. validation 0.1, test 0.1"
        )
    out = {}
    for uid in user_ids:
        h = int.from_bytes(hashlib.sha256(f"{seed}\x00{uid}".encode()).digest()[:8], "big") / 2**64
        out[uid] = "test" if h < test else "validation" if h < test + validation else "train"
    return out


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """0-based rank of each row's target among all items (ties count half): (R, N), (R,) -> (R,)."""
    t = scores.gather(1, targets[:, None])  # (R, 1)
    greater = (scores > t).sum(1).double()
    equal = (scores == t).sum(1).double() - 1
    return (greater + 0.5 * equal).numpy()


def ranking_metrics(ranks: np.ndarray) -> dict[str, float]:
    """Recall@10, Recall@50, NDCG@10 (one relevant item per row) from 0-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not len(ranks):
        return {"recall@10": float("nan"), "recall@50": float("nan"), "ndcg@10": float("nan")}
    return {
        "recall@10": float((ranks < 10).mean()),
        "recall@50": float((ranks < 50).mean()),
        "ndcg@10": float(np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0).mean()),
    }


def per_row(ranks: np.ndarray, metric: str) -> np.ndarray:
    if metric == "ndcg@10":
        return np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0)
    return (ranks < int(metric.split("@")[1])).astype(np.float64)


def popularity_scores(train_counts: np.ndarray, n_rows: int) -> torch.Tensor:
    """Every row ranks items by how often training users took them: (R, N)."""
    return torch.as_tensor(train_counts, dtype=torch.float32)[None].expand(n_rows, -1)


def mean_history_scores(V: torch.Tensor, hist: np.ndarray) -> torch.Tensor:
    """Zero-shot baseline: cosine between the mean of the history item vectors and every item: (R, N)."""
    h = torch.as_tensor(hist)
    mask = (h >= 0)[..., None].float()
    mean = (V[h.clamp(min=0)] * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return F.normalize(mean, dim=-1) @ F.normalize(V, dim=-1).T


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, groups: np.ndarray, *, n: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a - b and its 95% interval, resampling whole users (rows of one user move together)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=diff, minlength=len(uniq))
    counts = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(n, len(uniq)))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    return float(diff.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def check_split_fractions(validation: float, test: float, names: tuple[str, str]) -> None:
    """Held-out user shares: each in (0, 1), together below 1 (someone must be left to train on)."""
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ValueError(
            f"{names[0]} and {names[1]} must be in (0, 1) and sum below 1, got {validation} and {test}; "
            "e.g. 0.1 and 0.1"
        )
