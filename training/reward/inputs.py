"""What one ``train-reward`` run reads: the embedded texts, the ads' rows in that table, the user vectors,
and ``fit_on``, which fits a fresh network on a set of users (``training.reward.train`` calls it once, and
once more to refit on training + validation users)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creator.reward.model import RewardNet, points_text
from training.reward.config import RewardTrainConfig
from training.reward.data import (
    NegativeSampler,
    collab_rows,
    history_rows,
    impression_rows,
    train_cooccurrence,
    with_corruptions,
)
from training.reward.evaluate import RowTensors
from training.reward.fit import fit

logger = logging.getLogger(__name__)


def texts_of(cfg: RewardTrainConfig, catalog, ads, rewrites: list[list[str]]) -> list[str]:
    """Every text the run embeds: ad titles, history titles, their rewrites, selling points when used."""
    texts = {a.title for a in ads} | {h.title for u in catalog.users.values() for h in u.history}
    texts |= {t for rw in rewrites for t in rw}
    if cfg.model.use_selling_points:
        texts |= {points_text(a, cfg.model.max_points) for a in ads}
    return sorted(texts)


def encode_table(cfg: RewardTrainConfig, catalog, ads, rewrites) -> tuple[np.ndarray, dict[str, int], Any]:
    from creator.modeling.item_encoder import SentenceItemEncoder

    encoder = SentenceItemEncoder(cfg.model.item_encoder, cache_dir=cfg.cache_dir)
    texts_sorted = texts_of(cfg, catalog, ads, rewrites)
    t0 = time.perf_counter()
    table = encoder.encode(texts_sorted, progress=True)
    logger.info("embedded %d texts in %.1fs (%s)", len(texts_sorted), time.perf_counter() - t0, encoder.stats)
    return table, {t: i for i, t in enumerate(texts_sorted)}, encoder


@dataclass
class FitUsers:
    """What is counted over the users a model is fitted on (never over held-out users)."""

    users: list[str]
    counts: Counter  # times each ad was a positive (popularity sampling and baseline)
    cooc: Any  # ItemCooccurrence over their histories
    own: dict[str, list[str]]  # each counted user's item ids (leave-one-out in their rows)
    item_ids: list[str]  # the ids that get an embedding row (the items they took)

    @classmethod
    def of(cls, catalog: Any, users: list[str], min_history: int) -> FitUsers:
        counts = Counter(
            catalog.users[u].history[t].item_id
            for u in users
            for t in range(min_history, len(catalog.users[u].history))
        )
        cooc, own = train_cooccurrence(catalog, users)
        return cls(users, counts, cooc, own, sorted({i for ids in own.values() for i in ids}))

    @property
    def id_index(self) -> dict[str, int]:
        return {a: i + 1 for i, a in enumerate(self.item_ids)}


@dataclass
class RewardInputs:
    """The catalog's ads and texts as table rows, shared by every fit and evaluation of one run."""

    cfg: RewardTrainConfig
    catalog: Any
    ads: list[Any]
    ad_ids: list[str]
    table_np: np.ndarray  # (texts, item_dim) MiniLM vectors of every text the run reads
    text_index: dict[str, int]
    rewrite_ids: list[np.ndarray]  # per ad: table rows of its title's rewrites
    corrupt_ids: list[np.ndarray]  # per ad: table rows of its corrupted titles
    by_kind: dict[str, np.ndarray]  # corruption kind -> each ad's table row of it (-1: none)
    vec_model: Any  # the user model whose vector the judge reads, or None
    out: Path
    resume: bool
    uv_cache: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = torch.from_numpy(self.table_np)
        self.ad_index = {a: i for i, a in enumerate(self.ad_ids)}
        self.ad_vec = np.array([self.text_index[a.title] for a in self.ads], dtype=np.int64)
        self.ad_pts = (
            np.array([self.text_index[points_text(a, self.cfg.model.max_points)] for a in self.ads], dtype=np.int64)
            if self.cfg.model.use_selling_points
            else None
        )
        self.categories = [a.category for a in self.ads]

    def sampler(self, kind: str, counts: Counter) -> NegativeSampler:
        return NegativeSampler(
            self.ad_ids,
            kind,
            counts=counts,
            alpha=self.cfg.popularity_alpha,
            categories=self.categories,
            item_vecs=self.table_np[self.ad_vec],
        )

    def user_vectors(self, prefixes: list) -> np.ndarray:
        """User vectors per history prefix (user id, length): every epoch has the same training prefixes and
        the user model re-encodes titles on each call, so each prefix is embedded once."""
        keys = [(u.user_id, len(u.history)) for u in prefixes]
        todo = {k: u for k, u in zip(keys, prefixes, strict=True) if k not in self.uv_cache}
        if todo:
            self.uv_cache.update(zip(todo, self.vec_model.embed_users(list(todo.values())), strict=True))
        return np.stack([self.uv_cache[k] for k in keys]) if keys else np.zeros((0, self.vec_model.dim), np.float32)

    def tensors(self, rows: Any, fu: FitUsers) -> RowTensors:
        cfg = self.cfg
        uv = self.user_vectors(rows.prefixes) if self.vec_model is not None else None
        co = collab_rows(fu.cooc, rows, self.ad_ids, fu.own, cfg.model.max_history) if cfg.model.cooccurrence else None
        ids = fu.id_index if cfg.model.item_ids else None
        return RowTensors(rows, self.table, self.text_index, self.ads, cfg.model, self.ad_vec, self.ad_pts, uv, co,
                          ids, self.corrupt_ids)

    def eval_rows(self, users: list[str], kind: str, counts: Counter, seed: int) -> Any:
        """Held-out rows: each positive and ``eval_negatives`` negatives drawn by ``kind`` with ``seed``."""
        cfg = self.cfg
        return history_rows(self.catalog, users, self.sampler(kind, counts), cfg.eval_negatives,
                            np.random.default_rng(seed), cfg.min_history)

    def fit_on(self, fu: FitUsers, epochs: int, val_users: list[str] | None, tag: str) -> tuple[RewardNet, Any, Any]:
        """A fresh network fitted on ``fu``'s users (rows, counts, ids all theirs)."""
        cfg, catalog = self.cfg, self.catalog
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        cfg.model.id_vocab = len(fu.item_ids) if cfg.model.item_ids else 0
        train_sampler = self.sampler(cfg.sampling, fu.counts)
        val = None
        if val_users is not None:
            val = self.tensors(self.eval_rows(val_users, "uniform", fu.counts, cfg.seed + 1), fu)
        imp = impression_rows(catalog, set(fu.users), self.ad_index)[0] if cfg.use_impressions else None

        def train_rows() -> RowTensors:  # fresh negatives (and rewrites) every epoch
            rows = history_rows(catalog, fu.users, train_sampler, cfg.negatives, rng, cfg.min_history)
            if cfg.corruption_negatives:
                rows = with_corruptions(rows, [len(c) for c in self.corrupt_ids], cfg.corruption_negatives, rng)
            if imp is not None and len(imp):
                rows.extend(imp)
            t = self.tensors(rows, fu)
            if cfg.rewrite_fraction > 0:
                t.rewrite(self.rewrite_ids, cfg.rewrite_fraction, rng)
            return t

        net = RewardNet(cfg.model)
        n_pos = sum(max(0, len(catalog.users[u].history) - cfg.min_history) for u in fu.users)
        n_rows = n_pos * (1 + cfg.negatives + cfg.corruption_negatives) + (len(imp) if imp is not None else 0)
        res = fit(
            cfg,
            net,
            train_rows,
            n_rows,
            rng,
            epochs=epochs,
            val=val,
            ckpt=self.out / f"checkpoint{tag}.pt",
            log_path=self.out / f"train_log{tag}.jsonl",
            resume=self.resume,
        )
        net.load_state_dict(res.state)
        return net, res, val
