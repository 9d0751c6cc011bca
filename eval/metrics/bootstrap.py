"""Percentile bootstrap confidence intervals for the report's headline figures.

Every headline number is a mean over (user, ad) pairs; resampling the pairs with replacement
gives the spread a different draw of users and ads would have produced. A paired difference
(system minus original on the same pairs) is just the interval of the per-pair differences.

    >>> ci = bootstrap_ci([0.0, 1.0] * 200, n_resamples=2000, seed=0)
    >>> round(ci.estimate, 3), 0.44 < ci.low < 0.46, 0.54 < ci.high < 0.56
    (0.5, True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate (the mean of the data) with a two-sided ``level`` percentile interval."""

    estimate: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, digits: int = 3, scale: float = 1.0) -> str:
        """'0.512 [0.480, 0.545]' (``scale=100`` turns shares into percentages)."""
        if self.n == 0 or np.isnan(self.estimate):
            return "n/a"
        e, lo, hi = (v * scale for v in (self.estimate, self.low, self.high))
        return f"{e:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of ``values`` with a percentile-bootstrap interval. NaNs are left out (and not counted in ``n``).

    With no values the interval is all-NaN and ``n == 0``; with one value it collapses onto it.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}; use e.g. 0.95")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}; use e.g. 1000")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    estimate = float(x.mean())
    if n == 1:
        return Interval(estimate, estimate, estimate, 1, level)
    rng = np.random.default_rng(seed)
    # Resample in chunks so 1000 x 100k pairs never materialises as one (B, N) index array.
    chunk = max(1, min(n_resamples, 2_000_000 // n))
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))  # (b, N)
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(estimate, float(low), float(high), n, level)
