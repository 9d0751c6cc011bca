"""Diversity: distinct-n and self-BLEU, across the segments of one ad and across the catalog.

* distinct-n = unique n-grams / all n-grams over a set of titles (tokens: lower-cased ``\\w+`` runs).
  1.0 when no n-gram repeats; low when titles share their words.
* self-BLEU = mean over titles of sentence BLEU (sacrebleu, 13a tokenizer, ``effective_order=True``
  so short titles are not zeroed by missing 4-grams) of each title against all the others.
  1.0 when every title is the same; lower is more diverse.

Hand-checked: "a b" against the reference "a b c d" has unigram and bigram precision 1 and
effective order 2, so BLEU = brevity penalty exp(1 - 4/2) = 0.3679.

    >>> distinct_n(["red gel pen", "red ink pen"], 1), distinct_n(["red gel pen", "red ink pen"], 2)
    (0.6667, 1.0)
    >>> self_bleu(["a b c d", "a b c d", "a b"])   # (1 + 1 + 0.3679) / 3: each "a b c d" has a twin
    0.7893
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams across ``texts`` (4 decimals); NaN when there are no n-grams."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(t[i : i + n]) for t in map(tokens, texts) for i in range(len(t) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else float("nan")


def self_bleu(texts: Sequence[str], *, max_texts: int = 200, seed: int = 0) -> float:
    """Mean sentence BLEU of each text against the rest, in [0, 1] (4 decimals); NaN for fewer than 2 texts.

    Above ``max_texts`` a seeded sample is used (self-BLEU is quadratic in the number of texts).
    """
    from sacrebleu.metrics import BLEU

    texts = [t for t in texts if t and t.strip()]
    if len(texts) < 2:
        return float("nan")
    if len(texts) > max_texts:
        idx = np.random.default_rng(seed).choice(len(texts), size=max_texts, replace=False)
        texts = [texts[i] for i in sorted(idx)]
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]
    return round(float(np.mean(scores)) / 100.0, 4)


@dataclass
class DiversityResult:
    """Within one ad (mean over ads with >= 2 segments or users) and across the catalog.

    distinct-n within an ad falls as the number of variants grows (8 segments vs 200 users), so read it
    next to ``unique_titles_per_ad``; self-BLEU within an ad is a mean over titles and compares better.
    """

    distinct1_within_ad: float
    distinct2_within_ad: float
    self_bleu_within_ad: float
    ads_with_variants: int
    distinct1_catalog: float
    distinct2_catalog: float
    self_bleu_catalog: float
    unique_titles_per_ad: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Diversity:
    """``groups[i]`` = the titles ad *i* got in its different segments (or users), one per segment."""

    name = "diversity"

    def __init__(self, *, max_texts: int = 200, seed: int = 0) -> None:
        self.max_texts = max_texts
        self.seed = seed

    def __call__(self, groups: Sequence[Sequence[str]]) -> DiversityResult:
        multi = [list(g) for g in groups if len(g) >= 2]

        def mean(values: list[float]) -> float:
            vals = [v for v in values if not np.isnan(v)]
            return round(float(np.mean(vals)), 4) if vals else float("nan")

        within = {
            "d1": mean([distinct_n(g, 1) for g in multi]),
            "d2": mean([distinct_n(g, 2) for g in multi]),
            # Self-BLEU within an ad: a sample of ads keeps this linear in the catalog size.
            "sb": mean([self_bleu(g, max_texts=20, seed=self.seed) for g in _sample(multi, 100, self.seed)]),
        }
        catalog = [g[0] for g in groups if g]  # one title per ad, so catalog diversity is not ad repetition
        return DiversityResult(
            within["d1"],
            within["d2"],
            within["sb"],
            len(multi),
            distinct_n(catalog, 1),
            distinct_n(catalog, 2),
            self_bleu(catalog, max_texts=self.max_texts, seed=self.seed),
            mean([float(len(set(g))) for g in multi]),
        )


def _sample(items: list[Any], k: int, seed: int) -> list[Any]:
    if len(items) <= k:
        return items
    idx = np.random.default_rng(seed).choice(len(items), size=k, replace=False)
    return [items[i] for i in sorted(idx)]
