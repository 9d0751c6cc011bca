"""Metrics for a click model: AUC, group AUC, log loss, expected calibration error, Platt scaling.

Golden values, derived by hand (also checked in tests/creator/reward/test_click_metrics.py):

    >>> y = [0, 0, 1, 1]
    >>> p = [0.1, 0.4, 0.35, 0.8]
    >>> auc(y, p)          # positive-negative pairs won: 0.35>0.1, 0.8>0.1, 0.8>0.4; lost 0.35<0.4 -> 3/4
    0.75
    >>> round(ece(y, p, n_bins=2), 4)   # bin [0, .5): |0.2833-0.3333|*3/4; bin [.5, 1]: |0.8-1|*1/4
    0.0875
    >>> group_auc(y, p, groups=[0, 0, 1, 1]) is None   # no group has both labels
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-7


def _arrays(y: Sequence[float], p: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y_arr, p_arr = np.asarray(y, dtype=np.float64).ravel(), np.asarray(p, dtype=np.float64).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(
            f"labels and scores differ in length: {y_arr.size} labels, {p_arr.size} scores; "
            "pass one score per label"
        )
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1; binarise them first (clicked -> 1, not clicked -> 0)")
    return y_arr, p_arr


def auc(y: Sequence[float], p: Sequence[float]) -> float | None:
    """ROC AUC by the Mann-Whitney rank statistic (ties count 1/2); None when only one class is present."""
    y_arr, p_arr = _arrays(y, p)
    n_pos = int(y_arr.sum())
    n_neg = y_arr.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(p_arr)  # tied scores share their average rank
    return float((ranks[y_arr == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def group_auc(y: Sequence[float], p: Sequence[float], groups: Sequence) -> float | None:
    """Mean of per-group AUCs weighted by group size, over groups holding both labels (DIN's gAUC).

    A group is one request: a positive with its sampled negatives, or one impression with its
    shown items. None when no group has both labels.
    """
    y_arr, p_arr = _arrays(y, p)
    g = np.asarray(groups)
    if g.size != y_arr.size:
        raise ValueError(f"groups has {g.size} entries for {y_arr.size} labels; pass one group id per label")
    _, inverse = np.unique(g, return_inverse=True)
    total, weight = 0.0, 0
    for gid in range(inverse.max() + 1 if inverse.size else 0):
        idx = inverse == gid
        a = auc(y_arr[idx], p_arr[idx])
        if a is not None:
            total += a * int(idx.sum())
            weight += int(idx.sum())
    return total / weight if weight else None


def log_loss(y: Sequence[float], p: Sequence[float]) -> float:
    """Mean binary cross-entropy with probabilities clipped to [1e-7, 1 - 1e-7].

    >>> round(log_loss([1, 0], [0.5, 0.5]), 4)   # ln 2
    0.6931
    """
    y_arr, p_arr = _arrays(y, p)
    p_arr = np.clip(p_arr, EPS, 1 - EPS)
    return float(-(y_arr * np.log(p_arr) + (1 - y_arr) * np.log(1 - p_arr)).mean())


def ece(y: Sequence[float], p: Sequence[float], n_bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width bins of |mean p - click rate| x bin share.

    The last bin is closed ([0.9, 1.0] for 10 bins), so p = 1 is counted.
    """
    y_arr, p_arr = _arrays(y, p)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if ((p_arr < 0) | (p_arr > 1)).any():
        raise ValueError("ECE needs probabilities in [0, 1]; calibrate scores first (see platt_fit)")
    bins = np.minimum((p_arr * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        idx = bins == b
        if idx.any():
            total += abs(p_arr[idx].mean() - y_arr[idx].mean()) * idx.sum() / y_arr.size
    return float(total)


def platt_fit(scores: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(a, b) so that sigmoid(a * score + b) is calibrated on (scores, y): how baselines get probabilities."""
    from sklearn.linear_model import LogisticRegression

    y_arr, s_arr = _arrays(y, scores)
    if y_arr.min() == y_arr.max():
        raise ValueError("Platt scaling needs both clicked and unclicked rows")
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(s_arr.reshape(-1, 1), y_arr.astype(int))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def platt_apply(scores: Sequence[float], ab: tuple[float, float]) -> np.ndarray:
    z = ab[0] * np.asarray(scores, dtype=np.float64) + ab[1]
    return 1.0 / (1.0 + np.exp(-z))


def click_report(
    y: Sequence[float], p: Sequence[float], groups: Sequence | None = None
) -> dict[str, float | None]:
    """The four numbers the reward model is judged by, for one scorer on one evaluation set."""
    return {
        "auc": auc(y, p),
        "gauc": group_auc(y, p, groups) if groups is not None else None,
        "log_loss": log_loss(y, p),
        "ece": ece(y, p),
        "n": len(y),
    }


def paired_auc_delta(y: Sequence[float], a: Sequence[float], b: Sequence[float], groups: Sequence,
                     n_resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """AUC of scores ``b`` minus AUC of scores ``a`` on the same rows, with a 95% bootstrap interval that
    resamples whole ``groups`` (a request: one positive and its sampled negatives) with replacement.

    Two judges scored on one test set are compared this way: their AUCs move together with the draw of
    users, so the paired interval is far narrower than two separate ones.

        >>> y, g = [1, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 1]
        >>> d = paired_auc_delta(y, [0.1, 0.5, 0.2, 0.9, 0.3, 0.4], [0.9, 0.5, 0.2, 0.9, 0.3, 0.4], g, 200)
        >>> round(d["a"], 3), round(d["b"], 3), round(d["delta"], 3)
        (0.5, 1.0, 0.5)
    """
    y_arr, a_arr, b_arr = np.asarray(y, float), np.asarray(a, float), np.asarray(b, float)
    g_arr = np.asarray(groups)
    if not len(y_arr) == len(a_arr) == len(b_arr) == len(g_arr):
        raise ValueError(f"y, a, b and groups must have one entry per row, got {len(y_arr)}, {len(a_arr)}, "
                         f"{len(b_arr)} and {len(g_arr)}")
    _, g_idx = np.unique(g_arr, return_inverse=True)
    rows_of = np.split(np.argsort(g_idx, kind="stable"), np.cumsum(np.bincount(g_idx))[:-1])

    if y_arr.min() == y_arr.max():
        raise ValueError("paired_auc_delta needs both positive and negative rows")
    out = {"a": auc(y_arr, a_arr), "b": auc(y_arr, b_arr)}
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n_resamples):
        rows = np.concatenate([rows_of[i] for i in rng.integers(0, len(rows_of), len(rows_of))])
        if y_arr[rows].min() == y_arr[rows].max():
            continue
        deltas.append(auc(y_arr[rows], b_arr[rows]) - auc(y_arr[rows], a_arr[rows]))
    low, high = np.percentile(deltas, [2.5, 97.5])
    return {**out, "delta": out["b"] - out["a"], "low": float(low), "high": float(high), "n_groups": len(rows_of)}
