"""User–ad match model (HLLM-Creator's fourth loss) and the pruning of (user or cluster, ad) pairs.

``MatchHead`` scores a (user vector, ad item vector) pair with one logit. It is trained with one
positive (the user's next item) and ``n`` sampled negatives (default 8) on a single device, then
calibrated by Platt scaling: ``p = sigmoid(a * logit + b)`` with ``a, b`` fitted on held-out users
(the same 1-positive-to-n-negatives mix). So a probability reads "chance this ad is the one the user
takes, among 1 true ad and n random catalog ads"; its ranking is what pruning relies on.

    >>> s = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.7]])
    >>> prune_pairs(s, threshold=0.5, top_m=1).astype(int).tolist()
    [[1, 0, 0], [0, 1, 0]]
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from creator.modeling.user_model import UserModel

logger = logging.getLogger(__name__)


def match_scores(model: UserModel, user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
    """Calibrated match probability of every user with every ad: (N, dim), (M, item_dim) -> (N, M) float32
    (``UserModel.match``, ``MatchHead.probabilities``)."""
    return model.match_head.probabilities(user_vecs, ad_vecs)


def prune_pairs(
    scores: np.ndarray, *, threshold: float | None, top_m: int | None, axis: int = 1
) -> np.ndarray:
    """Keep-mask (N, M): keep a pair iff score >= ``threshold`` AND its rank along ``axis`` < ``top_m``.

    Rank 0 is the best score in its row (``axis=1``: each user or cluster keeps its top-m ads; ``axis=0``:
    each ad keeps its top-m users). Ties are ranked by index, so exactly ``top_m`` survive the rank rule.
    ``None`` disables a rule.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (users, ads) array, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; compute them with match_scores on finite user and ad vectors")
    if top_m is not None and top_m < 0:
        raise ValueError(f"top_m must be >= 0 or None, got {top_m}")
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (rank users per ad) or 1 (rank ads per user), got {axis}")
    keep = np.ones(scores.shape, dtype=bool)
    if threshold is not None:
        keep &= scores >= threshold
    if top_m is not None:
        order = np.argsort(-scores, axis=axis, kind="stable")
        rank = np.argsort(order, axis=axis, kind="stable")  # the inverse permutation: position of each pair
        keep &= rank < top_m
    return keep


def select_with_budget(
    scores: np.ndarray,
    *,
    threshold: float | None = None,
    top_m: int | None = None,
    ad_top_k: int | None = None,
    max_calls: int | None = None,
    live: np.ndarray | None = None,
) -> np.ndarray:
    """Keep-mask (K segments, M ads) for catalog generation: the threshold, two rank rules, then a call budget.

    - A pair is a **candidate** iff ``score >= threshold`` AND (its ad ranks < ``top_m`` for its segment
      OR its segment ranks < ``ad_top_k`` for its ad). With only one rank rule set, that rule alone
      decides; with neither, every pair above the threshold is a candidate.
    - ``live`` (K,) marks the segments that have users; the others are never kept nor ranked, so an
      ad's top-k are its k best *live* segments.
    - **Budget**: when there are more candidates than ``max_calls``, calls are allotted first to every
      ad's best candidate pair (ads ordered by that pair's score, best first), then to the remaining
      candidates by falling score, until the budget is spent. So a binding budget spreads the calls
      over as many ads as it can before any ad gets a second segment.

    Ties (in ranks and in the budget order) go to the lower segment index, then the lower ad index.

        >>> s = np.array([[0.9, 0.8, 0.1], [0.7, 0.6, 0.2]])
        >>> select_with_budget(s, top_m=1).astype(int).tolist()
        [[1, 0, 0], [1, 0, 0]]
        >>> select_with_budget(s, top_m=1, ad_top_k=1).astype(int).tolist()
        [[1, 1, 0], [1, 0, 1]]
        >>> select_with_budget(s, top_m=1, ad_top_k=1, max_calls=3).astype(int).tolist()
        [[1, 1, 0], [0, 0, 1]]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (segments, ads) array, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; compute them with match_scores on finite user and ad vectors")
    for name, value in (("top_m", top_m), ("ad_top_k", ad_top_k)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1 (or None to disable), got {value}")
    if max_calls is not None and max_calls < 0:
        raise ValueError(f"max_calls must be >= 0 (or None for no budget), got {max_calls}")
    live = np.ones(scores.shape[0], dtype=bool) if live is None else np.asarray(live, dtype=bool)
    ranked = np.where(live[:, None], scores, -np.inf)  # dead segments rank last for every ad
    keep = np.repeat(live[:, None], scores.shape[1], axis=1)
    if threshold is not None:
        keep &= scores >= threshold
    if top_m is not None or ad_top_k is not None:
        by_rank = np.zeros(scores.shape, dtype=bool)
        if top_m is not None:
            by_rank |= prune_pairs(ranked, threshold=None, top_m=top_m, axis=1)
        if ad_top_k is not None:
            by_rank |= prune_pairs(ranked, threshold=None, top_m=ad_top_k, axis=0)
        keep &= by_rank
    n = int(keep.sum())
    if max_calls is None or n <= max_calls:
        return keep
    ks, ms = np.nonzero(keep)  # row-major: segment, then ad (the tie order)
    s = scores[ks, ms]
    order = np.lexsort((np.arange(n), -s))  # by falling score, ties in row-major order
    first = np.zeros(n, dtype=bool)
    seen: set[int] = set()
    for i in order.tolist():  # each ad's best candidate is the first of its ad in score order
        if int(ms[i]) not in seen:
            seen.add(int(ms[i]))
            first[i] = True
    allot = np.concatenate([order[first[order]], order[~first[order]]])[:max_calls]
    out = np.zeros(scores.shape, dtype=bool)
    out[ks[allot], ms[allot]] = True
    logger.info("call budget %d binds: %d candidate pairs, %d ads get at least one", max_calls, n,
                len(set(ms[allot].tolist())))
    return out


def segments_per_ad(personalized: np.ndarray) -> dict[str, object]:
    """Coverage of a (segments, ads) boolean mask of personalized pairs: quantiles and a histogram of how
    many segments each ad is personalized for (bins 0, 1, 2, 3-4, 5-9, 10+)."""
    counts = np.asarray(personalized, dtype=bool).sum(axis=0)
    if counts.size == 0:
        return {"quantiles": {}, "histogram": {}}
    q = {name: float(np.quantile(counts, p)) for name, p in
         (("min", 0.0), ("p10", 0.1), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p90", 0.9), ("max", 1.0))}
    bins = (("0", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-9", 5, 9), ("10+", 10, None))
    hist = {name: int(((counts >= lo) & ((counts <= hi) if hi is not None else True)).sum())
            for name, lo, hi in bins}
    return {"quantiles": q | {"mean": round(float(counts.mean()), 4)}, "histogram": hist}
