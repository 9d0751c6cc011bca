"""Measures that can tell a user's own title from another user's: future fit, history fit, swapped judge.

A title written for a segment should suit the users of that segment better than it suits users of
other segments. Each measure compares, on the same (user, ad) pair, the user's **own** title with a
**swapped** one: the title the same system served, for the same ad, to a randomly drawn other user
whose title differs (pairs of an ad served to one segment only get NaN and are left out of the mean).

* **future fit**: cos(title, the user's held-out later items) own minus swapped. The later items are
  the last ``n_future`` items of the user's history (for the Amazon data: the row's next item), and they
  are left out of the history every other measure uses;
* **history fit**: cos(title, the user's earlier history) own minus swapped, and own minus the original
  title;
* **judge**: per-pair Good/Same/Bad of own over swapped (Adv), from the judge's scores;
* **segments differ**: share of kept (segment, ad) pairs whose title differs from another segment's
  title of the same ad (ads served to one segment only are left out).

Every per-pair array is bootstrapped by the report (``eval.metrics.bootstrap``): the interval of a
paired difference is the interval of its per-pair values.

    >>> swap_partner([("u1", "a"), ("u2", "a"), ("u3", "b")], ["x", "y", "z"], seed=0)
    [1, 0, -1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from creator.records.types import User


def swap_partner(pairs: Sequence[tuple[str, str]], titles: Sequence[str], *, seed: int = 0) -> list[int]:
    """For each pair i, the index of a random other user's pair of the same ad with a different title; -1 if none."""
    by_ad: dict[str, list[int]] = {}
    for i, (_, a) in enumerate(pairs):
        by_ad.setdefault(a, []).append(i)
    rng = np.random.default_rng(seed)
    out = []
    for i, (u, a) in enumerate(pairs):
        others = [j for j in by_ad[a] if pairs[j][0] != u and titles[j] != titles[i]]
        out.append(int(others[rng.integers(len(others))]) if others else -1)
    return out


def split_future(user: User, n_future: int = 1) -> tuple[list[str], list[str]]:
    """(earlier history titles, the last ``n_future`` titles held out); a user with <= n_future items has no future."""
    titles = user.history_titles
    if n_future <= 0 or len(titles) <= n_future:
        return titles, []
    return titles[:-n_future], titles[-n_future:]


def _profiles(encoder: Any, texts: list[list[str]]) -> np.ndarray:
    """(N, D) normalised mean vectors; a zero row where a list is empty."""
    flat = sorted({t for ts in texts for t in ts})
    vec = dict(zip(flat, np.asarray(encoder.encode(flat)), strict=True)) if flat else {}
    dim = len(next(iter(vec.values()))) if vec else 1
    out = np.zeros((len(texts), dim))
    for i, ts in enumerate(texts):
        if ts:
            m = np.mean([vec[t] for t in ts], axis=0)
            out[i] = m / (np.linalg.norm(m) + 1e-12)
    return out


def _cos(encoder: Any, titles: list[str], profiles: np.ndarray) -> np.ndarray:
    v = np.asarray(encoder.encode(titles), dtype=float)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sim = (v * profiles).sum(1)
    return np.where(np.linalg.norm(profiles, axis=1) > 0, sim, np.nan)


def user_fit(
    encoder: Any,
    pairs: Sequence[tuple[str, str]],
    users: Sequence[User],
    titles: Sequence[str],
    originals: Sequence[str],
    *,
    n_future: int = 1,
    seed: int = 0,
    judge_scores: tuple[np.ndarray, np.ndarray] | None = None,
    margin: float = 0.01,
) -> dict[str, np.ndarray]:
    """Per-pair arrays (NaN where a pair has no swap partner or no history/future).

    ``judge_scores``: (own, swapped) scores to turn into per-pair Good/Same/Bad (+1/0/-1); ``swapped_titles``
    in the result says which titles to score.
    """
    partner = swap_partner(pairs, titles, seed=seed)
    swapped = [titles[j] if j >= 0 else titles[i] for i, j in enumerate(partner)]
    has = np.array([j >= 0 for j in partner])
    earlier, future = zip(*(split_future(u, n_future) for u in users), strict=True) if users else ((), ())
    hist_p, fut_p = _profiles(encoder, list(earlier)), _profiles(encoder, list(future))
    own_h, swap_h, orig_h = (_cos(encoder, list(t), hist_p) for t in (titles, swapped, originals))
    own_f, swap_f = (_cos(encoder, list(t), fut_p) for t in (titles, swapped))
    nan = np.full(len(pairs), np.nan)
    out = {
        "swapped_titles": np.array(swapped, dtype=object),
        "future_fit_own_minus_swapped": np.where(has, own_f - swap_f, nan),
        "history_fit_own_minus_swapped": np.where(has, own_h - swap_h, nan),
        "history_fit_own_minus_original": own_h - orig_h,
    }
    if judge_scores is not None:
        d = np.asarray(judge_scores[0], dtype=float) - np.asarray(judge_scores[1], dtype=float)
        out["judge_own_vs_swapped"] = np.where(has, np.where(d > margin, 1.0, np.where(d < -margin, -1.0, 0.0)), nan)
    return out


def segments_differ(variants: Sequence[Sequence[str]]) -> float:
    """Share of (segment, ad) titles, over ads with two or more segments, that differ from another segment's title.

    ``variants``: per ad, its title for each segment it was kept for.

    >>> segments_differ([["a", "a", "b"], ["c", "c"], ["only"]])
    0.6
    """
    kept = differ = 0
    for ts in variants:
        if len(ts) < 2:
            continue
        kept += len(ts)
        differ += sum(any(o != t for o in ts) for t in ts)
    return differ / kept if kept else float("nan")


def _segment_words(histories: Sequence[Sequence[str]], top: int = 10) -> set[str]:
    """A segment's interests: the ``top`` words most users of it have in their histories (ties: alphabetical)."""
    counts: dict[str, int] = {}
    for titles in histories:
        for w in dict.fromkeys(w.lower() for t in titles for w in t.split() if len(w) > 3 and w.isalpha()):
            counts[w] = counts.get(w, 0) + 1
    return {w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}


def segment_title_differences(
    titles: dict[tuple[int, str], str], user_segments: dict[str, int], users: dict[str, User]
) -> dict[str, Any]:
    """For a batch run: do the segments of one ad get different titles, and more so when their interests differ?

    ``titles``: (segment, ad) -> the served title. A segment's interests are its users' most common history
    words; two segments' interest distance is 1 - Jaccard of those sets. Returns the share of ads kept for
    two or more segments whose segments got more than one title, and over every pair of segments of one ad:
    the share with different titles when the interests differ (distance > 0.5), and when they are close.
    """
    members: dict[int, list[list[str]]] = {}
    for uid, seg in user_segments.items():
        if uid in users:
            members.setdefault(seg, []).append(users[uid].history_titles)
    interests = {s: _segment_words(h) for s, h in sorted(members.items())}
    by_ad: dict[str, list[tuple[int, str]]] = {}
    for (seg, ad), t in sorted(titles.items()):
        by_ad.setdefault(ad, []).append((seg, t))
    multi = [v for v in by_ad.values() if len(v) >= 2]
    dist, differ = [], []
    for v in multi:
        for i in range(len(v)):
            for j in range(i + 1, len(v)):
                a, b = interests.get(v[i][0], set()), interests.get(v[j][0], set())
                dist.append(1.0 - len(a & b) / len(a | b) if a | b else 0.0)
                differ.append(v[i][1] != v[j][1])
    d, x = np.asarray(dist), np.asarray(differ, dtype=float)
    far, near = x[d > 0.5], x[d <= 0.5]
    return {
        "ads_with_2plus_segments": len(multi),
        "ads_whose_segments_differ": float(np.mean([len({t for _, t in v}) > 1 for v in multi])) if multi else None,
        "segment_pairs": len(x),
        "titles_differ_when_interests_differ": float(far.mean()) if len(far) else None,
        "titles_differ_when_interests_close": float(near.mean()) if len(near) else None,
    }
