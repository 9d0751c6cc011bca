"""Train the CTR reward model (the judge) and report it side by side with its baselines on held-out users.

    hllm-creator train-reward --config training/configs/reward.yaml \
        --data ../shared/data/amazon_office_products \
        --out runs/reward

Writes ``OUT/reward_model/`` (``RewardModel.from_pretrained``), ``OUT/metrics.json``,
``OUT/resolved_config.yaml``, ``OUT/train_log.jsonl`` and ``OUT/README.md`` (the model card).
``--resume`` continues from ``OUT/checkpoint.pt`` after an interruption.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from creator.reward import RewardConfig, RewardModel, RewardNet, load_user_model, points_text
from training.reward_card import metrics_table, model_card
from training.reward_data import (
    SAMPLINGS,
    NegativeSampler,
    collab_rows,
    history_rows,
    impression_rows,
    split_users,
    train_cooccurrence,
    user_model_split,
)
from training.reward_eval import RowTensors, evaluate, fit_baseline_calibration

logger = logging.getLogger(__name__)

__all__ = ["RewardTrainConfig", "ema_update", "load_config", "main", "metrics_table", "model_card", "train"]

EXAMPLE = (
    "hllm-creator train-reward --config training/configs/reward.yaml "
    "--data ../shared/data/amazon_office_products --out runs/reward"
)


@dataclass
class RewardTrainConfig:
    """Everything ``train-reward`` does; defaults -> ``--config`` YAML -> flags (``--set key=value``)."""

    data: str = ""
    format: str = "auto"
    out: str = "runs/reward"
    negatives: int = 8  # sampled negatives per positive (training)
    sampling: str = "uniform"  # uniform | popularity | same-category
    popularity_alpha: float = 0.75
    eval_negatives: int = 8
    eval_samplings: list[str] = field(default_factory=lambda: ["uniform", "popularity", "same-category"])
    min_history: int = 1
    val_fraction: float = 0.1  # users for early stopping
    test_fraction: float = 0.1  # users for the reported metrics
    max_users: int | None = None
    use_impressions: bool = True
    epochs: int = 8
    patience: int = 2
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    seed: int = 0
    threads: int = 1
    cache_dir: str | None = ".cache/embeddings"
    user_model_dir: str | None = None
    model: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = RewardConfig(**self.model)
        if not self.data:
            raise ValueError("no data given: pass --data DIR (e.g. ../shared/data/amazon_office_products)")
        for s in [self.sampling, *self.eval_samplings]:
            if s not in SAMPLINGS:
                raise ValueError(f"unknown sampling {s!r}; use one of {', '.join(SAMPLINGS)}")
        if self.negatives < 1 or self.eval_negatives < 1:
            raise ValueError("negatives and eval_negatives must be >= 1 (8 is the reported setting)")
        if not (
            0 < self.test_fraction < 1
            and 0 < self.val_fraction < 1
            and self.val_fraction + self.test_fraction < 1
        ):
            raise ValueError(
                "val_fraction and test_fraction must be in (0, 1) and sum below 1, "
                f"got {self.val_fraction} and {self.test_fraction}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns the weight average off), got {self.ema_decay}")
        if self.user_model_dir:
            # stored in the saved model: absolute, so it loads from any working folder
            self.user_model_dir = str(Path(self.user_model_dir).resolve())
            self.model.user_model_dir = self.user_model_dir

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def load_config(path: str | None, overrides: dict[str, Any]) -> RewardTrainConfig:
    """Defaults, then the YAML file, then ``overrides`` (dotted keys reach ``model.``, ``model.gaming.``)."""
    raw: dict[str, Any] = {}
    if path:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a reward config must be a YAML mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(RewardTrainConfig)}
    for key, value in overrides.items():
        node, parts = raw, key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown reward config keys {sorted(unknown)}; known: {sorted(known)}")
    return RewardTrainConfig(**raw)


def _encode_table(cfg: RewardTrainConfig, catalog, ads) -> tuple[np.ndarray, dict[str, int], Any]:
    from creator.modeling.item_encoder import SentenceItemEncoder

    encoder = SentenceItemEncoder(cfg.model.item_encoder, cache_dir=cfg.cache_dir)
    texts = {a.title for a in ads} | {h.title for u in catalog.users.values() for h in u.history}
    if cfg.model.use_selling_points:
        texts |= {points_text(a, cfg.model.max_points) for a in ads}
    texts_sorted = sorted(texts)
    t0 = time.perf_counter()
    table = encoder.encode(texts_sorted, progress=True)
    logger.info("embedded %d texts in %.1fs (%s)", len(texts_sorted), time.perf_counter() - t0, encoder.stats)
    return table, {t: i for i, t in enumerate(texts_sorted)}, encoder


def train(cfg: RewardTrainConfig, *, resume: bool = False, encoder: Any = None) -> dict[str, Any]:
    """Train, evaluate and write the artefact folder; returns the metrics dict (also in metrics.json)."""
    from tqdm.auto import tqdm

    from creator.io import load_catalog

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "resolved_config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    t_start = time.perf_counter()
    catalog = load_catalog(cfg.data, cfg.format)
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
    if encoder is None:
        table_np, text_index, encoder = _encode_table(cfg, catalog, ads)
    else:
        texts = sorted(
            {a.title for a in ads}
            | {h.title for u in catalog.users.values() for h in u.history}
            | ({points_text(a, cfg.model.max_points) for a in ads} if cfg.model.use_selling_points else set())
        )
        table_np, text_index = encoder.encode(texts), {t: i for i, t in enumerate(texts)}
    cfg.model.item_dim = int(table_np.shape[1])
    table = torch.from_numpy(table_np)
    ad_vec = np.array([text_index[a.title] for a in ads], dtype=np.int64)
    ad_pts = (
        np.array([text_index[points_text(a, cfg.model.max_points)] for a in ads], dtype=np.int64)
        if cfg.model.use_selling_points
        else None
    )
    user_model = load_user_model(cfg.user_model_dir) if cfg.user_model_dir else None
    if user_model is not None:
        cfg.model.user_dim = int(user_model.dim)

    counts = Counter(
        catalog.users[u].history[t].item_id
        for u in by_split["train"]
        for t in range(cfg.min_history, len(catalog.users[u].history))
    )
    categories = [a.category for a in ads]
    rng = np.random.default_rng(cfg.seed)
    # popularity / co-occurrence of the training users only (leave-one-out on their own rows)
    cooc, own = train_cooccurrence(catalog, by_split["train"])

    def sampler(kind: str) -> NegativeSampler:
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
            uv_cache.update(zip(todo, user_model.embed_users(list(todo.values())), strict=True))
        return np.stack([uv_cache[k] for k in keys]) if keys else np.zeros((0, user_model.dim), np.float32)

    def tensors(rows) -> RowTensors:
        uv = user_vectors(rows.prefixes) if user_model is not None else None
        co = collab_rows(cooc, rows, ad_ids, own, cfg.model.max_history) if cfg.model.cooccurrence else None
        return RowTensors(rows, table, text_index, ads, cfg.model, ad_vec, ad_pts, uv, co)

    train_sampler = sampler(cfg.sampling)
    eval_rng = np.random.default_rng(cfg.seed + 1)
    val = tensors(
        history_rows(
            catalog, by_split["validation"], sampler("uniform"), cfg.eval_negatives, eval_rng, cfg.min_history
        )
    )
    imp_train = impression_rows(catalog, set(by_split["train"]), ad_index)[0] if cfg.use_impressions else None

    def train_rows() -> RowTensors:  # fresh negatives every epoch
        rows = history_rows(catalog, by_split["train"], train_sampler, cfg.negatives, rng, cfg.min_history)
        if imp_train is not None and len(imp_train):
            rows.extend(imp_train)
        return tensors(rows)

    net = RewardNet(cfg.model)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start_epoch, best_auc, best_state, bad_epochs = 0, -1.0, None, 0
    # the averaged weights (validated and kept instead of the live ones when ema_decay > 0)
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()} if cfg.ema_decay else None
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        ema = state.get("ema", ema)
        opt.load_state_dict(state["opt"])
        start_epoch, best_auc, best_state, bad_epochs = (
            state["epoch"] + 1,
            state["best_auc"],
            state["best_state"],
            state["bad_epochs"],
        )
        rng.bit_generator.state = state["rng"]
        logger.info("resumed from %s at epoch %d", ckpt, start_epoch)
    # cosine decay of the learning rate over the planned steps (resumes at the right point)
    n_pos = sum(max(0, len(catalog.users[u].history) - cfg.min_history) for u in by_split["train"])
    n_rows = n_pos * (1 + cfg.negatives) + (len(imp_train) if imp_train is not None else 0)
    steps_per_epoch = max(1, -(-n_rows // cfg.batch_size))
    done = start_epoch * steps_per_epoch
    for group in opt.param_groups:
        group["lr"] = cfg.lr  # the schedule's base; a loaded optimizer state holds the decayed value
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda step: 0.5 * (1 + math.cos(math.pi * min((step + done) / (steps_per_epoch * cfg.epochs), 1.0))),
    )
    log = open(out / "train_log.jsonl", "a")
    t_train = time.perf_counter()
    step = done
    for epoch in range(start_epoch, cfg.epochs):
        tr = train_rows()
        net.train()
        order = tr.group_order()
        losses = []
        for s in tqdm(range(0, len(tr), cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False):
            idx = order[s : s + cfg.batch_size]
            loss = loss_fn(net(**tr.batch(idx)), tr.label[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if ema is not None:
                ema_update(ema, net.state_dict(), cfg.ema_decay, step)
        from creator.click_metrics import auc

        live = None
        if ema is not None:  # validate the averaged weights
            live = {k: v.detach().clone() for k, v in net.state_dict().items()}
            net.load_state_dict(ema)
        val_auc = auc(val.rows.label, val.logits(net)) or 0.0
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "val_auc": val_auc,
            "rows": len(tr),
            "seconds": time.perf_counter() - t_train,
        }
        log.write(json.dumps(entry) + "\n")
        log.flush()
        logger.info("epoch %d: loss %.4f, validation AUC %.4f", epoch + 1, entry["train_loss"], val_auc)
        if val_auc > best_auc:
            best_auc, bad_epochs = val_auc, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad_epochs += 1
        if live is not None:
            net.load_state_dict(live)
        torch.save(
            {
                "net": net.state_dict(),
                "ema": ema,
                "opt": opt.state_dict(),
                "epoch": epoch,
                "best_auc": best_auc,
                "best_state": best_state,
                "bad_epochs": bad_epochs,
                "rng": rng.bit_generator.state,
            },
            ckpt,
        )
        if bad_epochs >= cfg.patience:
            logger.info("no validation gain for %d epochs: stopping", bad_epochs)
            break
    log.close()
    train_seconds = time.perf_counter() - t_train
    if best_state is not None:
        net.load_state_dict(best_state)
    model = RewardModel(
        cfg.model, net, encoder=encoder, user_model=user_model, cache_dir=cfg.cache_dir, cooccurrence=cooc
    )
    model.save_pretrained(out / "reward_model")

    # ---- held-out users: the reward model next to its baselines --------------------------------
    calib_rows = tensors(
        history_rows(
            catalog,
            by_split["train"],
            sampler("uniform"),
            cfg.eval_negatives,
            np.random.default_rng(cfg.seed + 2),
            cfg.min_history,
        )
    )
    calib = fit_baseline_calibration(calib_rows, counts, ad_ids)
    results: dict[str, Any] = {}
    for kind in cfg.eval_samplings:
        rows = history_rows(
            catalog,
            by_split["test"],
            sampler(kind),
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
        results[f"sampled_{kind}"] = evaluate(
            kind, net, tensors(rows), calib, counts, ad_ids, ads, user_model=user_model, penalties=pens
        )
    if cfg.use_impressions and catalog.impressions:
        imp_rows, _ = impression_rows(catalog, set(by_split["test"]), ad_index)
        if len(imp_rows) and 0 < sum(imp_rows.label) < len(imp_rows):
            results["impressions"] = evaluate(
                "impressions", net, tensors(imp_rows), calib, counts, ad_ids, ads, user_model=user_model
            )
    metrics = {
        "results": results,
        "best_val_auc": best_auc,
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
    ckpt.unlink(missing_ok=True)
    return metrics


def ema_update(avg: dict[str, torch.Tensor], state: dict[str, torch.Tensor], decay: float, step: int) -> None:
    """avg <- d * avg + (1 - d) * state with d = min(decay, (1 + step) / (10 + step)), in place.

    The decay ramps up over the first steps so the random init does not linger in the average.
    Hand check: avg 0, state 1, decay 0.9, step 1 -> d = 2/11, avg = 9/11 = 0.8182; at step 100
    d = 0.9 (101/110 > 0.9), avg 0 -> 0.1. Integer buffers are copied.
    """
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for k, v in state.items():
            if v.dtype.is_floating_point:
                avg[k].mul_(d).add_(v, alpha=1 - d)
            else:
                avg[k].copy_(v)


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hllm-creator train-reward",
        description=__doc__.split("\n\n")[0],
        epilog=f"example:\n  {EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML file (keys of RewardTrainConfig; model: {...} for the net)")
    parser.add_argument("--data", help="catalog folder or file (any format load_catalog reads)")
    parser.add_argument("--format", help="amazon2018 | mind | hllm | jsonl | csv | parquet | auto")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--negatives", type=int, help="sampled negatives per positive")
    parser.add_argument("--sampling", choices=SAMPLINGS, help="how training negatives are drawn")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-users", type=int, help="use only the first N users (quick runs)")
    parser.add_argument(
        "--user-model-dir", help="a train-encoders output: its UserModel gives the user vector"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, dotted for nesting: --set model.proj_dim=32",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for name in (
        "data",
        "format",
        "out",
        "negatives",
        "sampling",
        "epochs",
        "max_users",
        "user_model_dir",
        "seed",
    ):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    try:
        cfg = load_config(args.config, overrides)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    metrics = train(cfg, resume=args.resume)
    print(metrics_table(metrics["results"]))
    print(
        f"\ntrained in {metrics['train_seconds']:.0f}s on {cfg.threads} thread(s); "
        f"model in {cfg.out}/reward_model"
    )
    return 0
