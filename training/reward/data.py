"""Click rows for the reward model: sampled negatives from histories, real labels from impression logs.

A row is (a user's history prefix, a candidate ad, clicked 0/1, group). From a history, the item a
user took at step t is a positive for the prefix ``history[:t]`` and ``k`` catalog items the user
never took are negatives (``uniform``, ``popularity`` ~ count**alpha, or ``same-category``; with no
categories in the catalog, ``same-category`` falls back to the title's nearest neighbours by item
vector and logs that). From an impression log (MIND), each shown ad is a row with its real label.
Users are split (not rows), so no held-out user's history is ever trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from creator.io.catalog import Catalog
from creator.records.rewrite import good_hook, hook, variants
from creator.records.types import Ad, User
from creator.reward.cooccurrence import N_COLLAB_FEATURES, ItemCooccurrence

logger = logging.getLogger(__name__)

SAMPLINGS = ("uniform", "popularity", "same-category")


def split_users(user_ids: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """user id -> train | validation | test by a seeded hash: stable when users are added or reordered."""
    out = {}
    for uid in user_ids:
        h = int(hashlib.sha1(f"{seed}:{uid}".encode()).hexdigest()[:12], 16) / 16**12
        out[uid] = (
            "test" if h < test_fraction else "validation" if h < test_fraction + val_fraction else "train"
        )
    return out


def user_model_split(user_model_dir: str | Path, user_ids: list[str]) -> dict[str, str] | None:
    """The user split of the ``train-encoders`` run that made a user model, or None when it is unknown.

    A reward model trained with that user model's vectors must hold out the users the user model held
    out: a user it trained on would leak into the reward model's test numbers (vectors and match head).
    Read from the run's ``resolved_config.yaml`` (in the folder or its parent).
    """
    d = Path(user_model_dir)
    for path in (d / "resolved_config.yaml", d.parent / "resolved_config.yaml"):
        raw = yaml.safe_load(path.read_text()) if path.exists() else None
        if isinstance(raw, dict) and {"validation_fraction", "test_fraction", "seed"} <= raw.keys():
            from training.encoders.ranking import split_users as encoder_split

            logger.info("users split as the user model's run was (%s)", path)
            return encoder_split(
                user_ids, validation=raw["validation_fraction"], test=raw["test_fraction"], seed=raw["seed"]
            )
    logger.warning(
        "no train-encoders resolved_config.yaml beside %s: the user split is the reward model's own, so "
        "held-out users may have been trained on by the user model",
        user_model_dir,
    )
    return None


@dataclass
class ClickRows:
    """Rows as indices: ``prefix`` into ``prefixes`` (history-prefix users), ``cand`` into the ad list."""

    prefixes: list[User] = field(default_factory=list)
    prefix: list[int] = field(default_factory=list)
    cand: list[int] = field(default_factory=list)
    label: list[float] = field(default_factory=list)
    group: list[int] = field(default_factory=list)
    # per row: -1 = the ad's own title, i >= 0 = the ad's i-th corrupted title (a label-0 row); empty = all -1
    variant: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.label)

    def extend(self, other: ClickRows) -> ClickRows:
        shift, gshift = len(self.prefixes), (max(self.group) + 1 if self.group else 0)
        self.prefixes += other.prefixes
        self.prefix += [p + shift for p in other.prefix]
        self.cand += other.cand
        self.label += other.label
        self.group += [g + gshift for g in other.group]
        if self.variant or other.variant:
            mine = self.variant or [-1] * (len(self) - len(other))
            self.variant = mine + (other.variant or [-1] * len(other))
        return self

    def variants(self) -> np.ndarray:
        return np.asarray(self.variant, dtype=np.int64) if self.variant else np.full(len(self), -1, np.int64)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.prefix, dtype=np.int64),
            np.asarray(self.cand, dtype=np.int64),
            np.asarray(self.label, dtype=np.float32),
            np.asarray(self.group, dtype=np.int64),
        )


class NegativeSampler:
    """Draws ``k`` distinct catalog ads a user never took, by one of ``SAMPLINGS``."""

    def __init__(
        self,
        ad_ids: list[str],
        sampling: str,
        *,
        counts: Counter | None = None,
        alpha: float = 0.75,
        categories: list[str] | None = None,
        item_vecs: np.ndarray | None = None,
        neighbours: int = 100,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown negative sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")
        self.ad_ids, self.sampling = ad_ids, sampling
        self.index = {a: i for i, a in enumerate(ad_ids)}
        n = len(ad_ids)
        self.probs = None
        if sampling == "popularity":
            c = np.array([(counts or Counter()).get(a, 0) for a in ad_ids], dtype=np.float64) + 1.0
            self.probs = c**alpha / (c**alpha).sum()
        self.pools: list[np.ndarray] | None = None
        if sampling == "same-category":
            cats = categories or [""] * n
            if len({c for c in cats if c}) >= 2:
                by: dict[str, list[int]] = {}
                for i, c in enumerate(cats):
                    by.setdefault(c, []).append(i)
                self.pools = [np.asarray(by[c]) for c in cats]
            elif item_vecs is not None:
                logger.warning(
                    "catalog has no categories: same-category negatives are the %d nearest titles "
                    "by item vector instead",
                    neighbours,
                )
                self.pools = nearest_neighbours(item_vecs, neighbours)
            else:
                raise ValueError(
                    "same-category sampling needs ad categories or item vectors; "
                    "use uniform or popularity sampling"
                )

    def sample(self, positive: str, exclude: set[str], k: int, rng: np.random.Generator) -> list[int]:
        n = len(self.ad_ids)
        pool = self.pools[self.index[positive]] if self.pools is not None and positive in self.index else None
        out: list[int] = []
        seen = {self.index[a] for a in exclude if a in self.index}
        if positive in self.index:
            seen.add(self.index[positive])
        for _ in range(20):  # rejection rounds; a user excluding most of a tiny catalog ends early
            if pool is not None and len(pool):
                draw = rng.choice(pool, size=2 * k)
            elif self.probs is not None:
                draw = rng.choice(n, size=2 * k, p=self.probs)
            else:
                draw = rng.integers(0, n, size=2 * k)
            for j in draw.tolist():
                if j not in seen:
                    seen.add(j)
                    out.append(j)
                    if len(out) == k:
                        return out
            if pool is not None and len(out) < k and all(int(j) in seen for j in pool):
                pool = None  # the category is used up: fill from the whole catalog
        return out


def nearest_neighbours(vecs: np.ndarray, k: int, chunk: int = 1024) -> list[np.ndarray]:
    """For each row, the ``k`` most cosine-similar other rows (vectors are L2-normalised)."""
    k = min(k, len(vecs) - 1)
    out: list[np.ndarray] = []
    for s in range(0, len(vecs), chunk):
        sims = vecs[s : s + chunk] @ vecs.T
        for i in range(sims.shape[0]):
            sims[i, s + i] = -np.inf
        out += list(np.argpartition(-sims, k, axis=1)[:, :k])
    return out


def history_rows(
    catalog: Catalog,
    user_ids: list[str],
    sampler: NegativeSampler,
    k: int,
    rng: np.random.Generator,
    min_history: int = 1,
) -> ClickRows:
    """One positive (the next item) and ``k`` sampled negatives per history step t >= ``min_history``."""
    rows = ClickRows()
    for uid in user_ids:
        user = catalog.users[uid]
        taken = {h.item_id for h in user.history}
        for t in range(min_history, len(user.history)):
            target = user.history[t].item_id
            if target not in sampler.index:
                continue  # no ad text to score; counted by the loader's missing-id report
            p = len(rows.prefixes)
            rows.prefixes.append(User(uid, user.history[:t], user.profile))
            g = len(rows.prefixes) - 1
            negs = sampler.sample(target, taken, k, rng)
            for c, y in [(sampler.index[target], 1.0)] + [(j, 0.0) for j in negs]:
                rows.prefix.append(p)
                rows.cand.append(c)
                rows.label.append(y)
                rows.group.append(g)
    return rows


def with_corruptions(rows: ClickRows, n_corrupt: list[int], k: int, rng: np.random.Generator) -> ClickRows:
    """``rows`` with ``k`` label-0 rows after each positive: the same history prefix and ad, one of the ad's
    ``n_corrupt[ad]`` corrupted titles each (distinct while they last). Rows stay grouped by request."""
    out = ClickRows(prefixes=rows.prefixes)
    old = rows.variants()
    for r in range(len(rows)):
        out.prefix.append(rows.prefix[r])
        out.cand.append(rows.cand[r])
        out.label.append(rows.label[r])
        out.group.append(rows.group[r])
        out.variant.append(int(old[r]))
        n = n_corrupt[rows.cand[r]]
        if rows.label[r] != 1.0 or n == 0 or k == 0:
            continue
        for v in rng.permutation(n)[:k].tolist():
            out.prefix.append(rows.prefix[r])
            out.cand.append(rows.cand[r])
            out.label.append(0.0)
            out.group.append(rows.group[r])
            out.variant.append(int(v))
    return out


def impression_rows(catalog: Catalog, user_ids: set[str], ad_index: dict[str, int]) -> tuple[ClickRows, int]:
    """Rows with real click labels from the impression log, grouped by impression; also the count skipped."""
    rows, skipped = ClickRows(), 0
    prefix_of: dict[str, int] = {}
    group_of: dict[str, int] = {}
    for imp in catalog.impressions:
        if imp.user_id not in user_ids:
            continue
        if imp.ad_id not in ad_index or imp.user_id not in catalog.users:
            skipped += 1
            continue
        if imp.user_id not in prefix_of:
            prefix_of[imp.user_id] = len(rows.prefixes)
            rows.prefixes.append(catalog.users[imp.user_id])
        gkey = imp.impression_id or f"{imp.user_id}@{imp.timestamp}"
        rows.prefix.append(prefix_of[imp.user_id])
        rows.cand.append(ad_index[imp.ad_id])
        rows.label.append(1.0 if imp.clicked else 0.0)
        rows.group.append(group_of.setdefault(gkey, len(group_of)))
    if skipped:
        logger.warning(
            "%d impressions skipped: their ad has no text in the catalog (or the user is unknown)", skipped
        )
    return rows, skipped


def train_cooccurrence(catalog: Catalog, train_user_ids: list[str]) -> tuple[ItemCooccurrence, dict[str, list[str]]]:
    """Co-occurrence counts over the training users' histories only, and each counted user's item ids.

    The second value is what ``collab_rows`` removes from a training row (leave-one-out); held-out
    users are neither counted nor in it.
    """
    own = {uid: [h.item_id for h in catalog.users[uid].history] for uid in train_user_ids}
    return ItemCooccurrence.from_histories(own.values()), own


def collab_rows(
    cooc: ItemCooccurrence, rows: ClickRows, ad_ids: list[str], own: dict[str, list[str]], max_history: int
) -> np.ndarray:
    """(len(rows), N_COLLAB_FEATURES) co-occurrence features per row, leave-one-out for counted users."""
    by_prefix: dict[int, list[int]] = {}
    for r, p in enumerate(rows.prefix):
        by_prefix.setdefault(p, []).append(r)
    out = np.zeros((len(rows), N_COLLAB_FEATURES), dtype=np.float32)
    for p, rs in by_prefix.items():
        user = rows.prefixes[p]
        out[rs] = cooc.features(
            [h.item_id for h in user.recent(max_history)],
            [ad_ids[rows.cand[r]] for r in rs],
            own.get(user.user_id),
        )
    return out


def title_rewrites(ad: Ad, per_ad: int, *, max_chars: int = 120, max_added_chars: int = 40) -> list[str]:
    """Up to ``per_ad`` rule-based rewrites of the ad's title that add nothing (``creator.records.rewrite``): the title
    trimmed, then ``title - hook`` and ``hook: title`` for each selling point with a benefit-like hook. They
    are the kind of title the teacher and the generator write, so the judge sees rewrites in training."""
    title = " ".join(ad.title.split())
    hooks = [h for h in map(hook, ad.selling_points) if h and good_hook(h, title)]
    out = variants(title, hooks, max_chars=max_chars, max_added_chars=max_added_chars)
    return [t for t in dict.fromkeys(" ".join(x.split()) for x in out) if t and t != title][:per_ad]
