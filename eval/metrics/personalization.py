"""Personalization: does the title speak to *this* user more than the original title does?

Three views, each per (user, ad) pair so the report can bootstrap them:

* **judge** (``judge_scores`` + ``pairwise``): a ``Judge`` (``eval.judge``: the CTR reward model
  or an LLM judge) scores user x title; Adv = (Good - Bad) / N against the original title or any
  other system, and the lift = mean(score(system) - score(original)).
* **history similarity** (``HistorySimilarity``): cosine of the title's MiniLM vector with the
  user's history profile (the normalised mean of the vectors of the titles they took *before*
  this ad) minus the same for the original title. Positive = moved towards the user.
* **segment spread** (``segment_spread``): how different the titles of one ad are across
  segments (mean pairwise cosine distance; 0 when every segment gets the same words).

    >>> scores_sys, scores_orig = [0.30, 0.20, 0.50, 0.40], [0.20, 0.20, 0.60, 0.395]
    >>> r = score_compare(scores_sys, scores_orig, margin=0.01)
    >>> (r.good, r.same, r.bad, r.adv)
    (1, 2, 1, 0.0)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from creator.modeling.item_encoder import ItemEncoder
from creator.records.types import Ad, User
from eval.judge import Judge, compare, verdict_codes

logger = logging.getLogger(__name__)


@dataclass
class Pairwise:
    """Outcome of A vs B on the same pairs; ``per_pair`` is +1 (A better), 0 (same) or -1 (B better)."""

    good: int
    same: int
    bad: int
    n: int
    adv: float
    per_pair: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"good": self.good, "same": self.same, "bad": self.bad, "n": self.n, "adv": self.adv}


def score_compare(
    scores_a: Sequence[float] | np.ndarray, scores_b: Sequence[float] | np.ndarray, *, margin: float = 0.01
) -> Pairwise:
    """Good when a - b > margin, Bad when b - a > margin, Same otherwise; Adv = (Good - Bad) / N."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"score arrays differ in shape {a.shape} vs {b.shape}; score the same pairs")
    per = verdict_codes(a, b, margin)  # the rule of eval.judge.compare
    good, bad = int((per == 1).sum()), int((per == -1).sum())
    n = len(per)
    return Pairwise(good, n - good - bad, bad, n, (good - bad) / n if n else float("nan"), per)


def pairwise(
    judge: Judge,
    users: list[User],
    titles_a: list[str],
    titles_b: list[str],
    ads: list[Ad] | None = None,
    *,
    margin: float = 0.01,
    scores: tuple[np.ndarray, np.ndarray] | None = None,
) -> Pairwise:
    """A vs B. A score-only judge with ``scores`` given: ``score_compare`` (the rule of
    ``eval.judge.compare``, without scoring again). A pairwise judge (one with ``prefer``, e.g. the LLM
    judge that asks twice with the order swapped) or no scores: ``eval.judge.compare``.
    """
    if scores is not None and not hasattr(judge, "prefer"):
        return score_compare(scores[0], scores[1], margin=margin)
    res = compare(judge, users, titles_a, titles_b, ads, margin=margin)
    per = np.asarray(res.per_pair)
    if per.dtype.kind not in "iuf":  # labels such as 'good' / 'same' / 'bad'
        per = np.array([{"good": 1, "bad": -1}.get(str(p).lower(), 0) for p in per])
    return Pairwise(int(res.good), int(res.same), int(res.bad), int(res.n), float(res.adv), per)


def history_before(user: User, ad_id: str) -> list[str]:
    """Titles the user took before first taking ``ad_id`` (all of them if never): no peeking at the answer."""
    for i, h in enumerate(user.history):
        if h.item_id == ad_id:
            return [x.title for x in user.history[:i]]
    return user.history_titles


def _normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(norms > 0, v / np.maximum(norms, 1e-12), 0.0)


class HistorySimilarity:
    """cos(title, profile) - cos(original, profile), profile = normalised mean of prior history vectors."""

    name = "history_similarity"

    def __init__(self, encoder: ItemEncoder) -> None:
        self.encoder = encoder

    def profiles(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """(N, D) one profile per history; a zero row for an empty history."""
        flat = [t for h in histories for t in h]
        vecs = self.encoder.encode(flat) if flat else np.zeros((0, self.encoder.dim), np.float32)
        out = np.zeros((len(histories), self.encoder.dim), dtype=np.float64)
        pos = 0
        for i, h in enumerate(histories):
            if h:
                out[i] = vecs[pos : pos + len(h)].mean(axis=0)
                pos += len(h)
        return _normalise(out)

    def similarity(self, titles: Sequence[str], profiles: np.ndarray) -> np.ndarray:
        """(N,) cosine of each title with its profile (NaN where the profile is empty)."""
        t = _normalise(self.encoder.encode(list(titles)).astype(np.float64))
        sims = (t * profiles).sum(axis=1)
        sims[np.linalg.norm(profiles, axis=1) == 0] = np.nan
        return sims

    def __call__(self, users: Sequence[User], ads: Sequence[Ad], titles: Sequence[str]) -> np.ndarray:
        """(N,) similarity lift of each title over its ad's original title; NaN without prior history."""
        profiles = self.profiles([history_before(u, a.ad_id) for u, a in zip(users, ads, strict=True)])
        return self.similarity(titles, profiles) - self.similarity([a.title for a in ads], profiles)


class HistorySimilarityJudge:
    """A zero-training proxy judge: (1 + cos(title, prior-history profile)) / 2 in [0, 1].

    It is not a click model. It lets the report draw judge plots before a reward model is trained,
    and the report labels it as a proxy. Its Adv vs the original tracks ``HistorySimilarity``.
    """

    name = "minilm-history-similarity (proxy, not a click model)"

    def __init__(self, encoder: ItemEncoder) -> None:
        self.sim = HistorySimilarity(encoder)

    def score(self, users: list[User], titles: list[str], ads: list[Ad] | None = None) -> np.ndarray:
        if ads is None:
            histories = [u.history_titles for u in users]
        else:
            histories = [history_before(u, a.ad_id) for u, a in zip(users, ads, strict=True)]
        sims = self.sim.similarity(titles, self.sim.profiles(histories))
        return (1.0 + np.nan_to_num(sims, nan=0.0)) / 2.0


def segment_spread(groups: Sequence[Sequence[str]], encoder: ItemEncoder) -> np.ndarray:
    """Per ad: mean pairwise cosine distance (1 - cos) between its titles across segments.

    ``groups[i]`` are the titles one ad got in its different segments. Ads with fewer than two
    segments are NaN (nothing to compare). Identical titles score 0.
    """
    out = np.full(len(groups), np.nan)
    flat = [t for g in groups if len(g) >= 2 for t in g]
    if not flat:
        return out
    vecs = _normalise(encoder.encode(flat).astype(np.float64))
    pos = 0
    for i, g in enumerate(groups):
        if len(g) < 2:
            continue
        v = vecs[pos : pos + len(g)]  # (S, D)
        pos += len(g)
        sims = v @ v.T
        s = len(g)
        out[i] = max(0.0, float(1.0 - (sims.sum() - np.trace(sims)) / (s * (s - 1))))  # no -0.000
    return out
