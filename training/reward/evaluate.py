"""Batches of vectors for click rows, and the side-by-side evaluation of the reward model and its baselines.

Baselines scored on the same held-out rows:
- ``popularity``: log(1 + times the ad was a training positive), Platt-scaled on training rows;
- ``cosine``: zero-shot cosine of the mean history vector and the title vector, Platt-scaled;
- ``match_head``: the usermodel's user-ad match head (calibrated by its owner), only when a
  ``user_model_dir`` is given and ``creator.segments.matching`` is installed.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np
import torch

from creator.records.types import Ad
from creator.reward.metrics import auc, click_report, platt_apply, platt_fit
from creator.reward.net import RewardConfig, RewardNet, title_lengths, token_matrix
from training.reward.data import ClickRows

logger = logging.getLogger(__name__)


class RowTensors:
    """Gathers the tensors ``RewardNet`` takes for any subset of rows from one table of text vectors."""

    def __init__(
        self,
        rows: ClickRows,
        table: torch.Tensor,
        text_index: dict[str, int],
        ads: list[Ad],
        cfg: RewardConfig,
        ad_vec: np.ndarray,
        ad_points: np.ndarray | None,
        prefix_user_vecs: np.ndarray | None = None,
        collab: np.ndarray | None = None,
        id_index: dict[str, int] | None = None,
        corruptions: list[np.ndarray] | None = None,
    ) -> None:
        self.rows, self.table, self.cfg = rows, table, cfg
        self.prefix, self.cand, self.label, self.group = (torch.from_numpy(a) for a in rows.arrays())
        t = cfg.max_history
        hist = np.full((len(rows.prefixes), t), -1, dtype=np.int64)
        for i, u in enumerate(rows.prefixes):
            ids = [text_index[h.title] for h in u.recent(t)]
            hist[i, : len(ids)] = ids
        self.hist = torch.from_numpy(hist)
        texts = sorted(text_index, key=text_index.get)
        self.tokens = torch.from_numpy(token_matrix(texts, cfg.token_buckets, cfg.max_tokens))  # (V, L)
        self.text_len = torch.from_numpy(title_lengths(texts))
        self.ad_vec = torch.from_numpy(ad_vec)
        # (N,) text id of each row's title: the ad's own, a corrupted one (rows.variant, text ids in
        # ``corruptions[ad]``), or a rewrite (``rewrite``); ``base_text`` keeps the first two
        base = self.ad_vec[self.cand].numpy().copy()
        self.variant = rows.variants()
        for i in np.flatnonzero(self.variant >= 0):
            base[i] = corruptions[int(self.cand[i])][self.variant[i]]  # type: ignore[index]
        self.base_text = torch.from_numpy(base)
        self.cand_text = self.base_text
        # each corrupted row's real-title row (with_corruptions puts it just before its corruptions); -1 = own
        real_rows = np.where(self.variant < 0, np.arange(len(base)), -1)
        self.real_row = torch.from_numpy(np.where(self.variant >= 0, np.maximum.accumulate(real_rows), -1))
        self.ad_points = torch.from_numpy(ad_points) if ad_points is not None else None
        self.user_vecs = torch.from_numpy(prefix_user_vecs) if prefix_user_vecs is not None else None
        self.collab = torch.from_numpy(collab) if collab is not None else None  # (N, N_COLLAB_FEATURES)
        # item-id embedding rows (0 = unknown): of each candidate ad, of each prefix's history items
        ids = id_index or {}
        self.ad_ids = torch.tensor([ids.get(a.ad_id, 0) for a in ads], dtype=torch.long)
        hist_ids = np.zeros((len(rows.prefixes), t), dtype=np.int64)
        for i, u in enumerate(rows.prefixes):
            recent = u.recent(t)
            hist_ids[i, : len(recent)] = [ids.get(h.item_id, 0) for h in recent]
        self.hist_ids = torch.from_numpy(hist_ids)
        # evaluation probes: every id "unknown" / co-occurrence features 0 (as for ads nobody took)
        self.unknown_ids, self.no_collab = False, False

    def __len__(self) -> int:
        return len(self.rows)

    def rewrite(self, rewrites: list[np.ndarray], fraction: float, rng: np.random.Generator) -> None:
        """Give a random ``fraction`` of the rows (positives and negatives alike) one of their ad's rewrites
        (``rewrites[ad]``: text ids) as title, so the title's wording is no label; ads without one keep theirs,
        and corrupted rows stay corrupted."""
        n_rw = np.array([len(r) for r in rewrites])[self.cand.numpy()]
        pick = (rng.random(len(self)) < fraction) & (n_rw > 0) & (self.variant < 0)
        cand = self.cand.numpy()
        which = (rng.random(len(self)) * np.maximum(n_rw, 1)).astype(np.int64)
        out = self.base_text.numpy().copy()
        for i in np.flatnonzero(pick):
            out[i] = rewrites[cand[i]][which[i]]
        self.cand_text = torch.from_numpy(out)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor | None]:
        p, c = self.prefix[idx], self.cand[idx]
        uniq, row_hist = torch.unique(p, return_inverse=True)  # rows of one request share its history
        h = self.hist[uniq]  # (G, T) text ids, -1 = pad
        ct = self.cand_text[idx]
        return {
            "title": self.table[ct],
            "history": self.table[h.clamp(min=0)],
            "mask": h >= 0,
            "lengths": self.text_len[ct],
            "row_hist": row_hist,
            "title_tokens": self.tokens[ct],
            "history_tokens": self.tokens[h.clamp(min=0)],
            "user": self.user_vecs[p] if self.user_vecs is not None and self.cfg.user_dim else None,
            "points": self.table[self.ad_points[c]] if self.ad_points is not None else None,
            "collab": (
                (torch.zeros_like(self.collab[idx]) if self.no_collab else self.collab[idx])
                if self.collab is not None and self.cfg.cooccurrence
                else None
            ),
            "title_ids": torch.zeros_like(c) if self.unknown_ids else self.ad_ids[c],
            "history_ids": torch.zeros_like(h) if self.unknown_ids else self.hist_ids[uniq],
        }

    def group_order(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Row indices with whole groups kept together, groups in random order (for shared histories)."""
        groups = self.group
        starts = torch.cat([torch.tensor([0]), torch.nonzero(groups[1:] != groups[:-1]).squeeze(1) + 1])
        ends = torch.cat([starts[1:], torch.tensor([len(groups)])])
        perm = torch.randperm(len(starts), generator=generator)
        return torch.cat([torch.arange(int(starts[i]), int(ends[i])) for i in perm.tolist()])

    def logits(
        self, net: RewardNet, batch_size: int = 4096, *, unknown_ids: bool = False, no_collab: bool = False
    ) -> np.ndarray:
        """(N,) logits. Probes of the text path: ``unknown_ids`` scores every ad and history item as an
        unknown id; with ``no_collab`` as well the co-occurrence features are 0 (an ad nobody took)."""
        net.eval()
        out = []
        self.unknown_ids, self.no_collab = unknown_ids, no_collab
        try:
            with torch.no_grad():
                for s in range(0, len(self), batch_size):
                    out.append(net(**self.batch(torch.arange(s, min(s + batch_size, len(self))))).numpy())
        finally:
            self.unknown_ids, self.no_collab = False, False
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def cosine_scores(self) -> np.ndarray:
        """Zero-shot: cosine of the (re-normalised) mean history vector and the title vector."""
        out = []
        for s in range(0, len(self), 8192):
            b = self.batch(torch.arange(s, min(s + 8192, len(self))))
            m = b["mask"].unsqueeze(-1).float()
            mean = ((b["history"] * m).sum(1) / m.sum(1).clamp(min=1))[b["row_hist"]]
            mean = mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-8)
            out.append((mean * b["title"]).sum(-1).numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def popularity_scores(rows: ClickRows, counts: Counter, ad_ids: list[str]) -> np.ndarray:
    return np.log1p(np.array([counts.get(ad_ids[c], 0) for c in rows.cand], dtype=np.float64))


def match_head_scores(user_model: Any, rows: ClickRows, ads: list[Ad]) -> np.ndarray | None:
    """The user-ad match head's calibrated probabilities per row, or None when it is not installed."""
    try:
        from creator.segments.matching import match_scores  # type: ignore[import-not-found]
    except ImportError:
        logger.warning("creator.segments.matching is not installed: the match-head baseline is skipped")
        return None
    user_vecs = user_model.embed_users(rows.prefixes)
    cand_ids = sorted(set(rows.cand))
    col = {c: i for i, c in enumerate(cand_ids)}
    ad_vecs = user_model.embed_items([ads[c].title for c in cand_ids])
    out = np.zeros(len(rows), dtype=np.float64)
    by_prefix: dict[int, list[int]] = {}
    for r, p in enumerate(rows.prefix):
        by_prefix.setdefault(p, []).append(r)
    for p, rs in by_prefix.items():
        cols = [col[rows.cand[r]] for r in rs]
        out[rs] = match_scores(user_model, user_vecs[p : p + 1], ad_vecs[cols])[0]
    return out


def evaluate(
    name: str,
    net: RewardNet,
    tensors: RowTensors,
    calib: dict[str, tuple[float, float]],
    counts: Counter,
    ad_ids: list[str],
    ads: list[Ad],
    *,
    user_model: Any = None,
    penalties: np.ndarray | None = None,
    logits: np.ndarray | None = None,
) -> dict[str, dict[str, float | None]]:
    """Metrics of the reward model and each baseline on one evaluation set, keyed by scorer; ``logits``: the
    reward model's, when the caller has them already."""
    rows = tensors.rows
    y = np.asarray(rows.label)
    groups = np.asarray(rows.group)
    z = tensors.logits(net) if logits is None else logits
    table: dict[str, dict[str, float | None]] = {"reward": click_report(y, sigmoid(z), groups)}
    if penalties is not None:
        table["reward+penalties"] = click_report(y, sigmoid(z - penalties), groups)
        table["reward+penalties"]["penalised_rows"] = float((penalties > 0).mean())
    table["popularity"] = click_report(
        y, platt_apply(popularity_scores(rows, counts, ad_ids), calib["popularity"]), groups
    )
    table["cosine"] = click_report(y, platt_apply(tensors.cosine_scores(), calib["cosine"]), groups)
    if user_model is not None:
        m = match_head_scores(user_model, rows, ads)
        if m is not None:
            table["match_head"] = click_report(y, m, groups)
    logger.info(
        "%s: reward AUC %.4f, cosine AUC %.4f",
        name,
        table["reward"]["auc"] or float("nan"),
        table["cosine"]["auc"] or float("nan"),
    )
    return table


def fit_baseline_calibration(
    tensors: RowTensors, counts: Counter, ad_ids: list[str]
) -> dict[str, tuple[float, float]]:
    """Platt (a, b) for the score-only baselines, fitted on training rows (never on held-out users)."""
    y = np.asarray(tensors.rows.label)
    return {
        "popularity": platt_fit(popularity_scores(tensors.rows, counts, ad_ids), y),
        "cosine": platt_fit(tensors.cosine_scores(), y),
    }


POPULARITY_BUCKETS = ((0, 0), (1, 4), (5, 9), (10, 19), (20, None))
HISTORY_BUCKETS = ((1, 1), (2, 3), (4, 6), (7, None))


def _bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else str(lo) if lo == hi else f"{lo}-{hi}"


def segment_report(rows: ClickRows, scores: np.ndarray, counts: Counter, ad_ids: list[str]) -> dict[str, Any]:
    """Where the AUC is won and lost: the rows of sampled requests (a positive and its negatives) split by
    how many training positives the positive ad has, by history length, and by whether the positive
    repeats an item already in the history. Each entry: requests, share of requests and AUC of ``scores``
    on their rows (None when a segment has no requests). Impression groups (several positives) are skipped.
    """
    y = np.asarray(rows.label)
    group = np.asarray(rows.group)
    scores = np.asarray(scores)
    positives: dict[int, list[int]] = {}  # group -> its positive rows
    for r in np.flatnonzero(y == 1).tolist():
        positives.setdefault(int(group[r]), []).append(r)
    single = {g: rs[0] for g, rs in positives.items() if len(rs) == 1}
    n_req = len(single)

    def seg(keep: list[int]) -> dict[str, Any]:
        mask = np.isin(group, np.asarray(keep, dtype=group.dtype))
        return {
            "requests": len(keep),
            "share": len(keep) / n_req if n_req else 0.0,
            "auc": auc(y[mask], scores[mask]) if keep else None,
        }

    pop = {g: counts.get(ad_ids[rows.cand[r]], 0) for g, r in single.items()}
    hist = {g: len(rows.prefixes[rows.prefix[r]].history) for g, r in single.items()}
    repeat = {
        g: ad_ids[rows.cand[r]] in {h.item_id for h in rows.prefixes[rows.prefix[r]].history}
        for g, r in single.items()
    }

    def within(v: int, lo: int, hi: int | None) -> bool:
        return v >= lo and (hi is None or v <= hi)

    return {
        "by_positive_popularity": {
            _bucket_name(lo, hi): seg([g for g, v in pop.items() if within(v, lo, hi)])
            for lo, hi in POPULARITY_BUCKETS
        },
        "by_history_length": {
            _bucket_name(lo, hi): seg([g for g, v in hist.items() if within(v, lo, hi)]) for lo, hi in HISTORY_BUCKETS
        },
        "by_repeat": {
            "repeat": seg([g for g, v in repeat.items() if v]),
            "new": seg([g for g, v in repeat.items() if not v]),
        },
    }


def segment_table(segments: dict[str, Any]) -> str:
    """Markdown: one row per segment of ``segment_report``."""
    titles = {
        "by_positive_popularity": "training positives of the clicked ad",
        "by_history_length": "history length",
        "by_repeat": "clicked ad already in the history",
    }
    lines = ["| split by | segment | requests | share | AUC |", "|---|---|---|---|---|"]
    for key, segs in segments.items():
        for name, m in segs.items():
            a = "n/a" if m["auc"] is None else f"{m['auc']:.4f}"
            lines.append(f"| {titles.get(key, key)} | {name} | {m['requests']} | {m['share']:.1%} | {a} |")
    return "\n".join(lines)


def rewrite_report(net: RewardNet, rows: RowTensors, rewrites: list[np.ndarray], rng: np.random.Generator,
                   own: np.ndarray | None = None) -> dict[str, float]:
    """The same rows scored with each candidate's own title and with one of its ad's rewrites: AUC both ways,
    and on the positives how often the rewrite scores above the real title (0.5 = the wording is no signal).
    ``own``: the logits with the own titles, when the caller has them already."""
    label = np.asarray(rows.rows.label)
    own = rows.logits(net) if own is None else own
    kept = rows.cand_text
    rows.rewrite(rewrites, 1.0, rng)
    changed = (rows.cand_text != kept).numpy()
    rewritten = rows.logits(net)
    rows.cand_text = kept
    pos = changed & (label == 1)
    return {
        "auc_own_titles": float(auc(label, own)),
        "auc_rewritten_titles": float(auc(label, rewritten)),
        "rows_rewritten": float(changed.mean()),
        "positives_rewrite_above_own": float((rewritten[pos] > own[pos]).mean()) if pos.any() else float("nan"),
        "mean_logit_change": float((rewritten - own)[changed].mean()) if changed.any() else 0.0,
    }


def corruption_report(net: RewardNet, rows: RowTensors, by_kind: dict[str, np.ndarray],
                      own: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """On the positive rows (a held-out user and the ad they took), how often the real title scores above
    its corrupted version, per kind of corruption (``by_kind[kind][ad]``: text id, -1 = none for that ad).
    1.0 = the judge always prefers the readable title; 0.5 = it cannot tell them apart."""
    label = np.asarray(rows.rows.label)
    own = rows.logits(net) if own is None else own
    kept, cand = rows.cand_text, rows.cand.numpy()
    out: dict[str, dict[str, float]] = {}
    wins_all, n_all = 0, 0
    for kind, ids in by_kind.items():
        bad = ids[cand]
        pos = (label == 1) & (bad >= 0) & (rows.variant < 0)
        if not pos.any():
            continue
        rows.cand_text = torch.from_numpy(np.where(pos, bad, kept.numpy()))
        try:
            z = rows.logits(net)
        finally:
            rows.cand_text = kept
        wins = int((own[pos] > z[pos]).sum())
        out[kind] = {"pairs": int(pos.sum()), "real_beats_corrupted": wins / int(pos.sum()),
                     "mean_logit_drop": float((own[pos] - z[pos]).mean())}
        wins_all, n_all = wins_all + wins, n_all + int(pos.sum())
    if n_all:
        out["all"] = {"pairs": n_all, "real_beats_corrupted": wins_all / n_all}
    return out
