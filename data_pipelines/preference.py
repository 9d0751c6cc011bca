"""Scoring candidate titles and turning them into (chosen, rejected) preference pairs for DPO.

The scorer is pluggable: anything with ``score(users, titles, ads=None) -> np.ndarray`` (the
``Judge`` protocol of ``eval/judge.py`` and ``creator.reward.model.RewardModel`` both fit). Before a CTR
judge is trained, two simple scorers stand in:

* ``LexicalInterestScorer`` (default, no model): how many of the user's history words the title
  uses, normalised, minus a small penalty per character over the original title.
* ``EmbeddingInterestScorer``: cosine between the MiniLM title vector and the recency-weighted
  mean of the user's history vectors.

Pair rule per (user, ad): chosen = the best-scoring candidate that passed the guard; rejected =
a candidate that failed the guard if any (the worst-scoring of those), else the worst-scoring
passing candidate with a different title. No pair when nothing differs.

    >>> from creator.records.types import Ad, HistoryItem, User
    >>> u = User("u", [HistoryItem("1", "Fountain Pen Ink, Blue")])
    >>> s = LexicalInterestScorer().score([u, u], ["Notebook for Fountain Pen Ink", "Notebook"])
    >>> bool(s[0] > s[1])
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from creator.records.types import Ad, User

_STOP = set(
    "a an and or the of for to in on with by from at as is are this that your you it its pack count".split()
)


class Scorer(Protocol):
    def score(self, users: list[User], titles: list[str], ads: list[Ad] | None = None) -> np.ndarray: ...


def _tokens(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in _STOP}


class LexicalInterestScorer:
    """Share of the title's content words found in the user's history, minus ``length_penalty`` per char
    beyond the ad's original title. Cheap and deterministic; a placeholder for the CTR judge."""

    name = "lexical"

    def __init__(self, length_penalty: float = 0.002) -> None:
        self.length_penalty = length_penalty

    def score(self, users: list[User], titles: list[str], ads: list[Ad] | None = None) -> np.ndarray:
        out = np.zeros(len(titles), dtype=np.float32)
        for i, (user, title) in enumerate(zip(users, titles, strict=True)):
            hist = _tokens(" ".join(user.history_titles))
            words = _tokens(title)
            overlap = len(words & hist) / max(len(words), 1)
            extra = max(0, len(title) - len(ads[i].title)) if ads else 0
            out[i] = overlap - self.length_penalty * extra
        return out


class EmbeddingInterestScorer:
    """cos(title vector, recency-weighted user vector) with any ``ItemEncoder`` (MiniLM by default)."""

    name = "minilm"

    def __init__(self, encoder: Any = None, half_life: float = 3.0) -> None:
        if encoder is None:
            from creator.modeling.item_encoder import SentenceItemEncoder

            encoder = SentenceItemEncoder()
        self.encoder = encoder
        self.half_life = half_life

    def score(self, users: list[User], titles: list[str], ads: list[Ad] | None = None) -> np.ndarray:
        t = self.encoder.encode(titles)  # (N, D)
        hist = sorted({h for u in users for h in u.history_titles})
        index = {h: i for i, h in enumerate(hist)}
        hv = self.encoder.encode(hist) if hist else np.zeros((0, t.shape[1]), np.float32)
        out = np.zeros(len(titles), dtype=np.float32)
        for i, user in enumerate(users):
            if not user.history:
                continue
            n = len(user.history)
            w = 0.5 ** (np.arange(n)[::-1] / self.half_life)  # (n,)
            u = (w[:, None] * hv[[index[h] for h in user.history_titles]]).sum(0)
            out[i] = float(t[i] @ (u / (np.linalg.norm(u) + 1e-8)))
        return out


def load_scorer(spec: str, encoder: Any = None) -> Scorer:
    """'lexical' | 'minilm' | 'reward:DIR' (a trained CTR reward model, ``creator.reward.model``)."""
    if spec == "lexical":
        return LexicalInterestScorer()
    if spec == "minilm":
        return EmbeddingInterestScorer(encoder)
    if spec.startswith("reward:"):
        from creator.reward.model import RewardModel  # the CTR judge of its own issue

        return RewardModel.from_pretrained(spec.split(":", 1)[1])
    raise ValueError(f"unknown scorer {spec!r}; use lexical, minilm or reward:DIR")


@dataclass
class Candidate:
    title: str
    passed: bool
    score: float
    failures: list[str]


def pick_pair(cands: Sequence[Candidate]) -> tuple[Candidate, Candidate] | None:
    """(chosen, rejected) by the rule in the module docstring, or ``None``."""
    good = [c for c in cands if c.passed]
    if not good:
        return None
    chosen = max(good, key=lambda c: c.score)
    bad = [c for c in cands if not c.passed and c.title.strip() and c.title != chosen.title]
    if bad:
        return chosen, min(bad, key=lambda c: c.score)
    others = [c for c in good if c.title != chosen.title and c.score < chosen.score]
    return (chosen, min(others, key=lambda c: c.score)) if others else None
