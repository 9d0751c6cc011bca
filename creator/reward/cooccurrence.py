"""Collaborative signals for the judge: how often an ad was taken and what it is taken together with.

Counted on the histories of TRAINING users only (``ItemCooccurrence.from_histories``), then read as a
few features per (user history, candidate ad):

- ``taken``: log(1 + users who took the candidate) — the popularity prior;
- ``co_max`` / ``co_sum``: log(1 + users who took both the candidate and a history item), max and sum
  over the history items;
- ``co_share``: share of the history items that some user took together with the candidate;
- ``co_last``: log(1 + users who took both the candidate and the most recent history item);
- ``co_cond``: max over history items h of p(candidate | h) = users(h, candidate) / users(h);
- ``known``: 1 when some training user took the candidate (0: a cold ad, every feature above is 0).

These are properties of the (user, ad) pair, not of the title's wording: two titles of one ad get the
same features, and the title text still decides which of them wins.

Leave-one-out: a training user's own history is part of the counts, so a positive row would see its
own pair counted (``co`` >= 1 for every positive). ``features(..., own=...)`` removes that user's
contribution, so a training row sees exactly what a held-out user sees: the other users' counts.

    >>> co = ItemCooccurrence.from_histories([["a", "b"], ["a", "b", "c"], ["c"]])
    >>> [round(float(x), 3) for x in co.features(["a"], ["b", "c", "zz"])[0]]  # b: 2 takers, 2 with a, p(b|a) = 2/2
    [1.099, 1.099, 1.099, 1.0, 1.099, 1.0, 1.0]
    >>> [round(float(x), 3) for x in co.features(["a"], ["b"], own=["a", "b"])[0]]  # that user's pair removed
    [0.693, 0.693, 0.693, 1.0, 0.693, 1.0, 1.0]
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FEATURES = ("taken", "co_max", "co_sum", "co_share", "co_last", "co_cond", "known")
N_COLLAB_FEATURES = len(FEATURES)


class ItemCooccurrence:
    """Per-item user counts and per-pair co-occurrence counts over a set of users' histories."""

    def __init__(self, item_ids: list[str], users: np.ndarray, pairs: dict[int, dict[int, int]], n_users: int):
        self.item_ids = list(item_ids)
        self.index = {a: i for i, a in enumerate(self.item_ids)}
        self.users = np.asarray(users, dtype=np.int64)  # (V,) users who took each item
        self.pairs = pairs  # i -> {j: users who took both i and j}, symmetric, no diagonal
        self.n_users = n_users

    @classmethod
    def from_histories(cls, histories: Iterable[Sequence[str]], max_items: int = 50) -> ItemCooccurrence:
        """Count over histories (item ids, oldest first); each user's last ``max_items`` distinct items."""
        users: Counter = Counter()
        pairs: dict[str, Counter] = {}
        n = 0
        for hist in histories:
            items = list(dict.fromkeys(reversed(list(hist))))[:max_items]  # distinct, most recent first
            n += 1
            users.update(items)
            for a in items:
                row = pairs.setdefault(a, Counter())
                row.update(b for b in items if b != a)
        item_ids = sorted(users)
        index = {a: i for i, a in enumerate(item_ids)}
        return cls(
            item_ids,
            np.array([users[a] for a in item_ids], dtype=np.int64),
            {index[a]: {index[b]: c for b, c in row.items()} for a, row in pairs.items()},
            n,
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def count(self, a: str, b: str) -> int:
        """Users who took both ``a`` and ``b`` (0 when either is unknown or a == b)."""
        i, j = self.index.get(a), self.index.get(b)
        return 0 if i is None or j is None else self.pairs.get(i, {}).get(j, 0)

    def features(
        self, history: Sequence[str], candidates: Sequence[str | None], own: Collection[str] | None = None
    ) -> np.ndarray:
        """(len(candidates), N_COLLAB_FEATURES) for one history (item ids, oldest first).

        ``own``: the full history of a user who is part of the counts (a training user); their own
        contribution is removed. A candidate of None (ad unknown) or one no user took gets all zeros.
        """
        own_set = set(own) if own is not None else set()
        hist = [self.index[h] for h in history if h in self.index]
        rows = [self.pairs.get(h, {}) for h in hist]
        h_users = [int(self.users[h]) - (self.item_ids[h] in own_set) for h in hist]
        out = np.zeros((len(candidates), N_COLLAB_FEATURES), dtype=np.float32)
        for k, cand in enumerate(candidates):
            c = self.index.get(cand) if cand is not None else None
            if c is None:
                continue
            mine = cand in own_set
            taken = int(self.users[c]) - mine
            if taken <= 0:
                continue
            co = [
                row.get(c, 0) - (mine and h != c and self.item_ids[h] in own_set)
                for h, row in zip(hist, rows, strict=True)
            ]
            cond = max((x / u for x, u in zip(co, h_users, strict=True) if u > 0), default=0.0)
            last = co[-1] if co and history and history[-1] in self.index else 0
            out[k] = (
                np.log1p(taken),
                np.log1p(max(co, default=0)),
                np.log1p(sum(co)),
                sum(x > 0 for x in co) / len(co) if co else 0.0,
                np.log1p(last),
                cond,
                1.0,
            )
        return out

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        src = [i for i, row in self.pairs.items() for _ in row]
        dst = [j for row in self.pairs.values() for j in row]
        cnt = [c for row in self.pairs.values() for c in row.values()]
        np.savez_compressed(
            path,
            item_ids=np.array(self.item_ids, dtype=np.str_),
            users=self.users,
            src=np.array(src, dtype=np.int64),
            dst=np.array(dst, dtype=np.int64),
            count=np.array(cnt, dtype=np.int64),
            n_users=np.array([self.n_users], dtype=np.int64),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> ItemCooccurrence:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: this reward model reads co-occurrence counts saved beside its weights "
                "by `hllm-creator train-reward`; retrain it, or copy the whole reward_model folder"
            )
        with np.load(path, allow_pickle=False) as z:
            pairs: dict[int, dict[int, int]] = {}
            for i, j, c in zip(z["src"].tolist(), z["dst"].tolist(), z["count"].tolist(), strict=True):
                pairs.setdefault(i, {})[j] = c
            return cls(z["item_ids"].tolist(), z["users"], pairs, int(z["n_users"][0]))
