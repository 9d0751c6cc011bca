"""Reference overlap: ROUGE-1/2/L F1 x 100 with one pinned scorer, always next to copy-the-original.

The scorer is Google's ``rouge-score`` package (``RougeScorer(['rouge1', 'rouge2', 'rougeL'],
use_stemmer=True)``, F-measure, averaged over pairs); ``SCORER`` names it with its installed
version and the report prints that string. Scorers tokenise differently (ROUGE-1.5.5, the
``rouge`` pip package and HF ``evaluate`` give different numbers), so figures are only
comparable under the same scorer.

Copying the original title is the baseline to beat: on PENS it scores far above every published
system (R-1 44.78 vs 28.01) because the human rewrites stay close to the originals. So the
report always shows, per system, ROUGE vs the references, the copy-original baseline on the same
pairs, and ROUGE vs the original (how far the system moved).

Hand-checked: "the cat sat" vs "the cat sat on the mat": R-1 P = 3/3, R = 3/6, F = 66.67;
R-2 P = 2/2, R = 2/5, F = 57.14; R-L (LCS 3) = 66.67.

    >>> r = rouge(["the cat sat"], ["the cat sat on the mat"])
    >>> {k: round(v, 2) for k, v in r.items()}
    {'rouge1': 66.67, 'rouge2': 57.14, 'rougeL': 66.67}
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version
from typing import Any

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
SCORER = f"rouge-score {version('rouge-score')} (RougeScorer rouge1/rouge2/rougeL, use_stemmer=True, F1x100)"


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_per_pair(predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """(N,) F1 x 100 per pair for each ROUGE type."""
    if len(predictions) != len(references):
        raise ValueError(
            f"got {len(predictions)} predictions but {len(references)} references; pair them 1:1"
        )
    out = {k: np.zeros(len(predictions)) for k in ROUGE_TYPES}
    scorer = _scorer()
    for i, (p, r) in enumerate(zip(predictions, references, strict=True)):
        s = scorer.score(r, p)  # rouge-score takes (target, prediction)
        for k in ROUGE_TYPES:
            out[k][i] = 100.0 * s[k].fmeasure
    return out


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean F1 x 100 per ROUGE type (NaN with no pairs)."""
    per = rouge_per_pair(predictions, references)
    return {k: float(v.mean()) if len(v) else float("nan") for k, v in per.items()}


class ReferenceMetrics:
    """ROUGE of a system vs references, of copy-the-original vs the same references, and of the system vs
    the original title."""

    name = "reference"
    scorer = SCORER

    def __call__(
        self, titles: Sequence[str], originals: Sequence[str], references: Sequence[str]
    ) -> dict[str, Any]:
        return {
            "n": len(titles),
            "scorer": SCORER,
            "vs_reference": rouge(titles, references),
            "copy_original_vs_reference": rouge(originals, references),
            "vs_original": rouge(titles, originals),
        }
