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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creator.config import parse, save_resolved
from creator.reward.model import RewardModel, RewardNet, load_user_model
from training.reward.card import metrics_table, model_card
from training.reward.config import ResumeOption, RewardTrainConfig
from training.reward.corruptions import title_corruptions
from training.reward.data import (
    impression_rows,
    split_users,
    title_rewrites,
    user_model_split,
)
from training.reward.evaluate import (
    RowTensors,
    corruption_report,
    evaluate,
    fit_baseline_calibration,
    rewrite_report,
    segment_report,
)
from training.reward.fit import ema_update
from training.reward.inputs import FitUsers, RewardInputs, encode_table, texts_of

logger = logging.getLogger(__name__)

__all__ = ["RewardTrainConfig", "ema_update", "main", "metrics_table", "model_card", "train"]

EXAMPLE = (
    "hllm-creator train-reward --config training/configs/reward.yaml "
    "--data ../shared/data/amazon_office_products --out runs/reward"
)


def prepare(cfg: RewardTrainConfig, catalog: Any, out: Path, resume: bool, encoder: Any) -> tuple[RewardInputs, Any]:
    """Every text embedded once (titles, history, rewrites, corrupted titles), and the user models:
    (the run's inputs, the item encoder)."""
    ad_ids = sorted(catalog.ads)
    ads = [catalog.ads[a] for a in ad_ids]
    # rewrites of every ad's title: trained on with rewrite_fraction, and always measured on the test users
    rewrites = [title_rewrites(a, cfg.rewrites_per_ad) for a in ads]
    # corrupted titles of every ad: trained on with corruption_negatives, and always measured on the test users
    corrupted = [title_corruptions(a, cfg.seed, cfg.corruption_kinds) for a in ads]
    extra = rewrites + [list(c.values()) for c in corrupted]
    if encoder is None:
        table_np, text_index, encoder = encode_table(cfg, catalog, ads, extra)
    else:
        texts = texts_of(cfg, catalog, ads, extra)
        table_np, text_index = encoder.encode(texts), {t: i for i, t in enumerate(texts)}
    rewrite_ids = [np.array([text_index[t] for t in rw], dtype=np.int64) for rw in rewrites]
    corrupt_ids = [np.array([text_index[t] for t in c.values()], dtype=np.int64) for c in corrupted]
    by_kind = {k: np.array([text_index[c[k]] if k in c else -1 for c in corrupted], dtype=np.int64)
               for k in cfg.corruption_kinds}
    cfg.model.item_dim = int(table_np.shape[1])
    user_model = load_user_model(cfg.user_model_dir) if cfg.user_model_dir else None  # match-head baseline
    vec_model = user_model if cfg.user_vectors else None  # the judge's user vector
    if vec_model is not None:
        cfg.model.user_dim = int(vec_model.dim)
    inputs = RewardInputs(cfg, catalog, ads, ad_ids, table_np, text_index, rewrite_ids, corrupt_ids, by_kind,
                          vec_model, out, resume)
    return inputs, (encoder, user_model)


def split_of(cfg: RewardTrainConfig, catalog: Any) -> dict[str, list[str]]:
    """Users by split: the run's own split, or exactly the users the user model held out."""
    user_ids = sorted(catalog.users)
    if cfg.max_users:
        user_ids = user_ids[: cfg.max_users]
    split = split_users(user_ids, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    if cfg.user_model_dir:  # hold out exactly the users the user model held out
        split = user_model_split(cfg.user_model_dir, user_ids) or split
    return {s: [u for u in user_ids if split[u] == s] for s in ("train", "validation", "test")}


def validation_report(run: RewardInputs, net: RewardNet, res: Any, val: RowTensors) -> dict[str, Any]:
    """Validation AUC, and the text path alone: ids unknown, then co-occurrence off as well (cold ads)."""
    from creator.reward.metrics import auc

    cfg = run.cfg
    validation: dict[str, Any] = {"auc": res.best_auc, "best_epoch": res.best_epoch}
    if cfg.model.item_ids:
        validation["auc_unknown_ids"] = auc(val.rows.label, val.logits(net, unknown_ids=True))
    if cfg.model.cooccurrence:
        validation["auc_cold_ads"] = auc(val.rows.label, val.logits(net, unknown_ids=True, no_collab=True))
    validation["rewrites"] = rewrite_report(net, val, run.rewrite_ids, np.random.default_rng(cfg.seed + 4))
    validation["corruptions"] = corruption_report(net, val, run.by_kind)
    logger.info("validation: %s", validation)
    return validation


def held_out(run: RewardInputs, net: RewardNet, model: RewardModel, fu: FitUsers, test_users: list[str],
             user_model: Any) -> dict[str, Any]:
    """The reward model next to its baselines on the held-out users; the baselines are counted and
    calibrated on the users the model was fitted on."""
    cfg, ads, ad_ids = run.cfg, run.ads, run.ad_ids
    calib_rows = run.tensors(run.eval_rows(fu.users, "uniform", fu.counts, cfg.seed + 2), fu)
    calib = fit_baseline_calibration(calib_rows, fu.counts, ad_ids)
    report: dict[str, Any] = {"results": {}, "rewrites": None, "corruptions": None, "segments": None,
                              "train_rows_per_epoch": len(calib_rows)}
    results = report["results"]
    for kind in cfg.eval_samplings:
        rows = run.eval_rows(test_users, kind, fu.counts, cfg.seed + 3)
        pens = (
            model.penalties(
                [rows.prefixes[p] for p in rows.prefix],
                [ads[c].title for c in rows.cand],
                [ads[c] for c in rows.cand],
            )
            if kind == "uniform"
            else None
        )
        rt = run.tensors(rows, fu)
        z = rt.logits(net)  # scored once: the metrics, the rewrite report and the segments all read it
        results[f"sampled_{kind}"] = evaluate(
            kind, net, rt, calib, fu.counts, ad_ids, ads, user_model=user_model, penalties=pens, logits=z
        )
        if kind == "uniform":  # the uniform test rows: rewritten titles, segments, real vs corrupted titles
            # per row, so two judges trained on the same data compare on the same rows (paired intervals)
            report["test_scores"] = {"label": np.asarray(rows.label), "group": np.asarray(rows.group), "logit": z}
            report["rewrites"] = rewrite_report(net, rt, run.rewrite_ids, np.random.default_rng(cfg.seed + 4), own=z)
            report["segments"] = segment_report(rows, z, fu.counts, ad_ids)
            report["corruptions"] = corruption_report(net, rt, run.by_kind, own=z)
    if cfg.use_impressions and run.catalog.impressions:
        imp_rows, _ = impression_rows(run.catalog, set(test_users), run.ad_index)
        if len(imp_rows) and 0 < sum(imp_rows.label) < len(imp_rows):
            results["impressions"] = evaluate(
                "impressions", net, run.tensors(imp_rows, fu), calib, fu.counts, ad_ids, ads, user_model=user_model
            )
    return report


def train(cfg: RewardTrainConfig, *, resume: bool = False, encoder: Any = None) -> dict[str, Any]:
    """Train, evaluate and write the artefact folder; returns the metrics dict (also in metrics.json). Torch runs on
    ``cfg.threads`` threads meanwhile; the caller's setting is restored after (quickstart generates next, in the
    same process: left at 1 thread, Gemma's generation took 1.7x as long)."""
    if not cfg.data:
        raise ValueError("no data given: pass --data DIR (e.g. ../shared/data/amazon_office_products)")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, resume, encoder)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: RewardTrainConfig, resume: bool, encoder: Any) -> dict[str, Any]:
    from creator.io import load_catalog

    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(out / "resolved_config.yaml", cfg)
    t_start = time.perf_counter()
    catalog = load_catalog(cfg.data, cfg.format).require_ads()
    by_split = split_of(cfg, catalog)
    run, (encoder, user_model) = prepare(cfg, catalog, out, resume, encoder)

    fu = FitUsers.of(catalog, by_split["train"], cfg.min_history)
    net, res, val = run.fit_on(fu, cfg.epochs, by_split["validation"], "")
    validation = validation_report(run, net, res, val)
    train_seconds = res.seconds
    if cfg.refit:  # again on training + validation users, for the epochs the validation run chose
        fu = FitUsers.of(catalog, by_split["train"] + by_split["validation"], cfg.min_history)
        logger.info("refit on %d users for %d epochs", len(fu.users), res.best_epoch)
        net, refit_res, _ = run.fit_on(fu, res.best_epoch, None, "_refit")
        train_seconds += refit_res.seconds
    model = RewardModel(
        cfg.model,
        net,
        encoder=encoder,
        user_model=run.vec_model,
        cache_dir=cfg.cache_dir,
        cooccurrence=fu.cooc,
        item_ids=fu.item_ids if cfg.model.item_ids else None,
    )
    model.save_pretrained(out / "reward_model")
    report = held_out(run, net, model, fu, by_split["test"], user_model)
    metrics = {
        "results": report["results"],
        "rewrites": report["rewrites"],
        "corruptions": report["corruptions"],
        "segments": report["segments"],
        "best_val_auc": res.best_auc,
        "validation": validation,
        "refit": {"epochs": res.best_epoch, "users": len(fu.users)} if cfg.refit else None,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "threads": cfg.threads,
        "users": {k: len(v) for k, v in by_split.items()},
        "train_rows_per_epoch": report["train_rows_per_epoch"],
        "n_ads": len(run.ads),
        "data": cfg.data,
    }
    scores = report.pop("test_scores", None)
    if scores is not None:
        np.savez_compressed(out / "test_scores.npz", **scores)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(model_card(cfg, metrics))
    (out / "checkpoint.pt").unlink(missing_ok=True)
    (out / "checkpoint_refit.pt").unlink(missing_ok=True)
    return metrics


def parse_config(argv: list[str] | None = None) -> tuple[RewardTrainConfig, ResumeOption]:
    """The run's ``RewardTrainConfig`` (defaults, ``--config YAML``, flags) and whether to resume it."""
    return parse([RewardTrainConfig, ResumeOption], argv, __doc__.split("\n\n")[0], f"example:\n  {EXAMPLE}")


def main(argv: list[str] | None = None) -> int:
    cfg, opts = parse_config(argv)
    metrics = train(cfg, resume=opts.resume)
    print(metrics_table(metrics["results"]))
    print(
        f"\ntrained in {metrics['train_seconds']:.0f}s on {cfg.threads} thread(s); "
        f"model in {cfg.out}/reward_model"
    )
    return 0


