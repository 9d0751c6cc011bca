"""Metric classes: factuality, compliance, personalization, diversity, reference overlap.

Each is a small class (or function) with a runnable docstring example; ``eval.report`` runs them
all over the same (user, ad) pairs and bootstraps the headline figures.
"""

from eval.metrics.bootstrap import Interval, bootstrap_ci
from eval.metrics.compliance import CHANNELS, Channel, Compliance, parse_channel
from eval.metrics.diversity import Diversity, distinct_n, self_bleu
from eval.metrics.factuality import FACT_RULES, Factuality
from eval.metrics.personalization import (
    HistorySimilarity,
    HistorySimilarityJudge,
    history_before,
    pairwise,
    score_compare,
    segment_spread,
)
from eval.metrics.reference import SCORER, ReferenceMetrics, rouge

__all__ = [
    "CHANNELS",
    "FACT_RULES",
    "SCORER",
    "Channel",
    "Compliance",
    "Diversity",
    "Factuality",
    "HistorySimilarity",
    "HistorySimilarityJudge",
    "Interval",
    "ReferenceMetrics",
    "bootstrap_ci",
    "distinct_n",
    "history_before",
    "pairwise",
    "parse_channel",
    "rouge",
    "score_compare",
    "segment_spread",
    "self_bleu",
]
