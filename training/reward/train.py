"""Train the CTR reward model (the judge) and report it side by side with its baselines on held-out users.

    hllm-creator train-reward --config training/configs/reward.yaml \
        --data ../shared/data/amazon_office_products \
        --out runs/reward

Writes ``OUT/reward_model/`` (``RewardModel.from_pretrained``), ``OUT/metrics.json``,
``OUT/resolved_config.yaml``, ``OUT/train_log.jsonl`` and ``OUT/README.md`` (the model card).
``--resume`` continues from ``OUT/checkpoint.pt`` after an interruption.
The validation users choose the epoch; with ``refit: true`` (``reward.yaml``) a fresh network is then
trained on training + validation users for that many epochs (``OUT/train_log_refit.jsonl``,
``OUT/checkpoint_refit.pt``), and that one is saved and tested.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from creator.config import parse
from creator.reward.model import RewardModel, RewardNet, load_user_model, points_text
from training.reward.card import metrics_table, model_card
from training.reward.config import ResumeOption, RewardTrainConfig
from training.reward.corruptions import title_corruptions
from training.reward.data import (
    NegativeSampler,
    collab_rows,
    history_rows,
    impression_rows,
    split_users,
    title_rewrites,
    train_cooccurrence,
    user_model_split,
    with_corruptions,
)
from training.reward.evaluate import (
    RowTensors,
    corruption_report,
    evaluate,
    fit_baseline_calibration,
    rewrite_report,
    segment_report,
)
from training.reward.fit import ema_update, fit

logger = logging.getLogger(__name__)

__all__ = ["RewardTrainConfig", "ema_update", "main", "metrics_table", "model_card", "train"]

EXAMPLE = (
    "hllm-creator train-reward --config training/configs/reward.yaml "
    "--data ../shared/data/amazon_office_products --out runs/reward"
)


def _texts(cfg: RewardTrainConfig, catalog, ads, rewrites: list[list[str]]) -> list[str]:
    """Every text the run embeds: ad titles, history titles, their rewrites, selling points when used."""
    texts = {a.title for a in ads} | {h.title for u in catalog.users.values() for h in u.history}
    texts |= {t for rw in rewrites for t in rw}
    if cfg.model.use_selling_points:
        texts |= {points_text(a, cfg.model.max_points) for a in ads}
    return sorted(texts)


def _encode_table(cfg: RewardTrainConfig, catalog, ads, rewrites) -> tuple[np.ndarray, dict[str, int], Any]:
    from creator.modeling.item_encoder import SentenceItemEncoder

    encoder = SentenceItemEncoder(cfg.model.item_encoder, cache_dir=cfg.cache_dir)
    texts_sorted = _texts(cfg, catalog, ads, rewrites)
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


def train(cfg: RewardTrainConfig, *, resume: bool = False, encoder: Any = None) -> dict[str, Any]:
    """Train, evaluate and write the artefact folder; returns the metrics dict (also in metrics.json)."""
    from creator.io import load_catalog
    from creator.reward.metrics import auc

    if not cfg.data:
        raise ValueError("no data given: pass --data DIR (e.g. ../shared/data/amazon_office_products)")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "resolved_config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    t_start = time.perf_counter()
    catalog = load_catalog(cfg.data, cfg.format).require_ads()
    ad_ids = sorted(catalog.ads)
    ads = [catalog.ads[a] for a in ad_ids]
    ad_index = {a: i for i, a in enumerate(ad_ids)}
    user_ids = sorted(catalog.users)
    if cfg.max_users:
        user_ids = user_ids[: cfg.max_users]
    split = split_users(user_ids, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    if cfg.user_model_dir:  # hold out exactly the users the user model held out
        split = user_model_split(cfg.user_model_dir, user_ids) or split
    by_split = {s: [u for u in user_ids if split[u] == s] for s in ("train", "validation", "test")}
    # rewrites of every ad's title: trained on with rewrite_fraction, and always measured on the test users
    rewrites = [title_rewrites(a, cfg.rewrites_per_ad) for a in ads]
    # corrupted titles of every ad: trained on with corruption_negatives, and always measured on the test users
    corrupted = [title_corruptions(a, cfg.seed, cfg.corruption_kinds) for a in ads]
    extra = rewrites + [list(c.values()) for c in corrupted]
    if encoder is None:
        table_np, text_index, encoder = _encode_table(cfg, catalog, ads, extra)
    else:
        texts = _texts(cfg, catalog, ads, extra)
        table_np, text_index = encoder.encode(texts), {t: i for i, t in enumerate(texts)}
    rewrite_ids = [np.array([text_index[t] for t in rw], dtype=np.int64) for rw in rewrites]
    corrupt_ids = [np.array([text_index[t] for t in c.values()], dtype=np.int64) for c in corrupted]
    by_kind = {k: np.array([text_index[c[k]] if k in c else -1 for c in corrupted], dtype=np.int64)
               for k in cfg.corruption_kinds}
    cfg.model.item_dim = int(table_np.shape[1])
    table = torch.from_numpy(table_np)
    ad_vec = np.array([text_index[a.title] for a in ads], dtype=np.int64)
    ad_pts = (
        np.array([text_index[points_text(a, cfg.model.max_points)] for a in ads], dtype=np.int64)
        if cfg.model.use_selling_points
        else None
    )
    user_model = load_user_model(cfg.user_model_dir) if cfg.user_model_dir else None  # match-head baseline
    vec_model = user_model if cfg.user_vectors else None  # the judge's user vector
    if vec_model is not None:
        cfg.model.user_dim = int(vec_model.dim)
    categories = [a.category for a in ads]

    def sampler(kind: str, counts: Counter) -> NegativeSampler:
        return NegativeSampler(
            ad_ids,
            kind,
            counts=counts,
            alpha=cfg.popularity_alpha,
            categories=categories,
            item_vecs=table_np[ad_vec],
        )

    # user vectors per history prefix (user id, length): every epoch has the same training prefixes and
    # the user model re-encodes titles on each call, so each prefix is embedded once
    uv_cache: dict[tuple[str, int], np.ndarray] = {}

    def user_vectors(prefixes: list) -> np.ndarray:
        keys = [(u.user_id, len(u.history)) for u in prefixes]
        todo = {k: u for k, u in zip(keys, prefixes, strict=True) if k not in uv_cache}
        if todo:
            uv_cache.update(zip(todo, vec_model.embed_users(list(todo.values())), strict=True))
        return np.stack([uv_cache[k] for k in keys]) if keys else np.zeros((0, vec_model.dim), np.float32)

    def tensors(rows: Any, fu: FitUsers) -> RowTensors:
        uv = user_vectors(rows.prefixes) if vec_model is not None else None
        co = collab_rows(fu.cooc, rows, ad_ids, fu.own, cfg.model.max_history) if cfg.model.cooccurrence else None
        ids = fu.id_index if cfg.model.item_ids else None
        return RowTensors(rows, table, text_index, ads, cfg.model, ad_vec, ad_pts, uv, co, ids, corrupt_ids)

    def fit_on(fu: FitUsers, epochs: int, val_users: list[str] | None, tag: str) -> tuple[RewardNet, Any, Any]:
        """A fresh network fitted on ``fu``'s users (rows, counts, ids all theirs)."""
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        cfg.model.id_vocab = len(fu.item_ids) if cfg.model.item_ids else 0
        train_sampler = sampler(cfg.sampling, fu.counts)
        val = None
        if val_users is not None:
            val_rows = history_rows(
                catalog,
                val_users,
                sampler("uniform", fu.counts),
                cfg.eval_negatives,
                np.random.default_rng(cfg.seed + 1),
                cfg.min_history,
            )
            val = tensors(val_rows, fu)
        imp = impression_rows(catalog, set(fu.users), ad_index)[0] if cfg.use_impressions else None

        def train_rows() -> RowTensors:  # fresh negatives (and rewrites) every epoch
            rows = history_rows(catalog, fu.users, train_sampler, cfg.negatives, rng, cfg.min_history)
            if cfg.corruption_negatives:
                rows = with_corruptions(rows, [len(c) for c in corrupt_ids], cfg.corruption_negatives, rng)
            if imp is not None and len(imp):
                rows.extend(imp)
            t = tensors(rows, fu)
            if cfg.rewrite_fraction > 0:
                t.rewrite(rewrite_ids, cfg.rewrite_fraction, rng)
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
            ckpt=out / f"checkpoint{tag}.pt",
            log_path=out / f"train_log{tag}.jsonl",
            resume=resume,
        )
        net.load_state_dict(res.state)
        return net, res, val

    fu = FitUsers.of(catalog, by_split["train"], cfg.min_history)
    net, res, val = fit_on(fu, cfg.epochs, by_split["validation"], "")
    validation: dict[str, Any] = {"auc": res.best_auc, "best_epoch": res.best_epoch}
    # the text path alone on the validation users: ids unknown, then co-occurrence off as well (cold ads)
    if cfg.model.item_ids:
        validation["auc_unknown_ids"] = auc(val.rows.label, val.logits(net, unknown_ids=True))
    if cfg.model.cooccurrence:
        validation["auc_cold_ads"] = auc(val.rows.label, val.logits(net, unknown_ids=True, no_collab=True))
    validation["rewrites"] = rewrite_report(net, val, rewrite_ids, np.random.default_rng(cfg.seed + 4))
    validation["corruptions"] = corruption_report(net, val, by_kind)
    logger.info("validation: %s", validation)
    train_seconds = res.seconds
    if cfg.refit:  # again on training + validation users, for the epochs the validation run chose
        fu = FitUsers.of(catalog, by_split["train"] + by_split["validation"], cfg.min_history)
        logger.info("refit on %d users for %d epochs", len(fu.users), res.best_epoch)
        net, refit_res, _ = fit_on(fu, res.best_epoch, None, "_refit")
        train_seconds += refit_res.seconds
    model = RewardModel(
        cfg.model,
        net,
        encoder=encoder,
        user_model=vec_model,
        cache_dir=cfg.cache_dir,
        cooccurrence=fu.cooc,
        item_ids=fu.item_ids if cfg.model.item_ids else None,
    )
    model.save_pretrained(out / "reward_model")

    # ---- held-out users: the reward model next to its baselines --------------------------------
    # baselines are counted and calibrated on the users the model was fitted on
    calib_rows = tensors(
        history_rows(
            catalog,
            fu.users,
            sampler("uniform", fu.counts),
            cfg.eval_negatives,
            np.random.default_rng(cfg.seed + 2),
            cfg.min_history,
        ),
        fu,
    )
    calib = fit_baseline_calibration(calib_rows, fu.counts, ad_ids)
    results: dict[str, Any] = {}
    rewrites_seen: dict[str, float] | None = None  # the uniform test rows with rewritten titles
    corruptions_seen: dict[str, Any] | None = None  # the real title against its corrupted versions
    segments: dict[str, Any] | None = None  # the uniform test rows' AUC by segment
    for kind in cfg.eval_samplings:
        rows = history_rows(
            catalog,
            by_split["test"],
            sampler(kind, fu.counts),
            cfg.eval_negatives,
            np.random.default_rng(cfg.seed + 3),
            cfg.min_history,
        )
        pens = (
            model.penalties(
                [rows.prefixes[p] for p in rows.prefix],
                [ads[c].title for c in rows.cand],
                [ads[c] for c in rows.cand],
            )
            if kind == "uniform"
            else None
        )
        rt = tensors(rows, fu)
        z = rt.logits(net)  # scored once: the metrics, the rewrite report and the segments all read it
        results[f"sampled_{kind}"] = evaluate(
            kind, net, rt, calib, fu.counts, ad_ids, ads, user_model=user_model, penalties=pens, logits=z
        )
        if kind == "uniform":
            rewrites_seen = rewrite_report(net, rt, rewrite_ids, np.random.default_rng(cfg.seed + 4), own=z)
            segments = segment_report(rows, z, fu.counts, ad_ids)
            corruptions_seen = corruption_report(net, rt, by_kind, own=z)
    if cfg.use_impressions and catalog.impressions:
        imp_rows, _ = impression_rows(catalog, set(by_split["test"]), ad_index)
        if len(imp_rows) and 0 < sum(imp_rows.label) < len(imp_rows):
            results["impressions"] = evaluate(
                "impressions", net, tensors(imp_rows, fu), calib, fu.counts, ad_ids, ads, user_model=user_model
            )
    metrics = {
        "results": results,
        "rewrites": rewrites_seen,
        "corruptions": corruptions_seen,
        "segments": segments,
        "best_val_auc": res.best_auc,
        "validation": validation,
        "refit": {"epochs": res.best_epoch, "users": len(fu.users)} if cfg.refit else None,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "threads": cfg.threads,
        "users": {k: len(v) for k, v in by_split.items()},
        "train_rows_per_epoch": len(calib_rows),
        "n_ads": len(ads),
        "data": cfg.data,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(model_card(cfg, metrics))
    (out / "checkpoint.pt").unlink(missing_ok=True)
    (out / "checkpoint_refit.pt").unlink(missing_ok=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    cfg, opts = parse([RewardTrainConfig, ResumeOption], argv, __doc__.split("\n\n")[0], f"example:\n  {EXAMPLE}")
    metrics = train(cfg, resume=opts.resume)
    print(metrics_table(metrics["results"]))
    print(
        f"\ntrained in {metrics['train_seconds']:.0f}s on {cfg.threads} thread(s); "
        f"model in {cfg.out}/reward_model"
    )
    return 0


