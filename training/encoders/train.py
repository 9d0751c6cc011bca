"""Train the user model: next-item pretraining of the user encoder, then the user–ad match head.

    hllm-creator train-encoders --config training/configs/encoders.yaml \\
        --data ../shared/data/amazon_office_products --format amazon2018 --out runs/encoders

Users are split by user (never by row) into train / validation / test. Every history step of a
held-out user is a test row ranked against the full catalog, for the popularity baseline, the
zero-shot mean-of-history baseline and the trained encoder alike. Writes ``OUT/user_model/``
(``UserModel.from_pretrained``), ``OUT/metrics.json``, ``OUT/resolved_config.yaml`` and
``OUT/README.md`` (model card). Multi-GPU: ``accelerate launch -m training.encoders.train ...`` (same flags).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from creator.config import parse, save_resolved
from creator.modeling.item_encoder import build_item_encoder
from creator.modeling.match_head import MatchHead, MatchHeadConfig
from creator.modeling.user_encoder import UserEncoder, UserEncoderConfig
from creator.modeling.user_model import UserModel, item_text
from creator.reward.metrics import ece
from training.encoders.config import EncodersConfig
from training.encoders.next_item import (
    FitConfig,
    encode_rows,
    make_rows,
    match_pairs,
    train_match_head,
    train_next_item,
)
from training.encoders.ranking import (
    mean_history_scores,
    paired_bootstrap,
    per_row,
    popularity_scores,
    ranking_metrics,
    split_users,
    target_ranks,
)

logger = logging.getLogger(__name__)

EXAMPLE = (
    "hllm-creator train-encoders --config training/configs/encoders.yaml "
    "--data ../shared/data/amazon_office_products --format amazon2018 --out runs/encoders"
)


def item_table(catalog) -> tuple[list[str], list[str]]:
    """(item ids, item texts): every ad, then any history item with no ad record (titled from the log)."""
    ids = list(catalog.ads)
    texts = [item_text(a) for a in catalog.ads.values()]
    seen = set(ids)
    for user in catalog.users.values():
        for h in user.history:
            if h.item_id not in seen:
                seen.add(h.item_id)
                ids.append(h.item_id)
                texts.append(item_text(h))
    return ids, texts


def evaluate(scores_fn, rows, chunk: int = 1024) -> tuple[dict, np.ndarray]:
    """Rank each row's target among all items with ``scores_fn(rows) -> (R, N)``, in chunks of rows."""
    ranks = [
        target_ranks(scores_fn(rows.take(np.arange(i, min(i + chunk, len(rows))))),
                     torch.as_tensor(rows.target[i : i + chunk]))
        for i in range(0, len(rows), chunk)
    ]
    ranks = np.concatenate(ranks) if ranks else np.zeros(0)
    return ranking_metrics(ranks), ranks


def user_rows(cfg: EncodersConfig, users: list, index: dict[str, int]) -> tuple[dict, dict]:
    """Users split by user into train / validation / test: (item-index sequences, next-item rows) per split."""
    split = split_users(
        [u.user_id for u in users],
        validation=cfg.validation_fraction,
        test=cfg.test_fraction,
        seed=cfg.seed,
    )
    seqs = {
        s: [[index[h.item_id] for h in u.history] for u in users if split[u.user_id] == s]
        for s in ("train", "validation", "test")
    }
    rows = {s: make_rows(seq, cfg.max_history) for s, seq in seqs.items()}
    for s in rows:
        if not len(rows[s]):
            raise ValueError(
                f"the {s} split has no next-item rows (users need at least 2 history items); "
                "use more users or change validation_fraction / test_fraction"
            )
    logger.info("rows: %s", {s: len(r) for s, r in rows.items()})
    return seqs, rows


def build_user_encoder(cfg: EncodersConfig, item_dim: int) -> UserEncoder:
    return UserEncoder(
        UserEncoderConfig(
            item_dim=item_dim,
            dim=cfg.dim,
            hidden=cfg.hidden,
            layers=cfg.layers,
            heads=cfg.heads,
            dropout=cfg.dropout,
            max_len=cfg.max_history,
            mean_skip=cfg.mean_skip,
            item_tower=cfg.item_tower,
            backbone=cfg.backbone,
        )
    )


def fit_config(cfg: EncodersConfig) -> FitConfig:
    return FitConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        sampled_negatives=cfg.sampled_negatives,
        patience=cfg.patience,
        history_dropout=cfg.history_dropout,
        seed=cfg.seed,
    )


def rank_test_users(cfg: EncodersConfig, methods: dict, test) -> tuple[dict, dict]:
    """Each method's ranking metrics on the test rows, and the encoder's gain over the mean of history
    with a paired bootstrap CI over users."""
    results, ranks = {}, {}
    for name, fn in methods.items():
        results[name], ranks[name] = evaluate(fn, test)
    deltas = {}
    for metric in ("recall@10", "recall@50", "ndcg@10"):
        mean, lo, hi = paired_bootstrap(
            per_row(ranks["user_encoder"], metric),
            per_row(ranks["mean_history_cosine"], metric),
            test.user,
            seed=cfg.seed,
        )
        deltas[metric] = {"mean": mean, "ci95": [lo, hi]}
    return results, deltas


def fit_match_head(cfg: EncodersConfig, encoder: UserEncoder, V: torch.Tensor, rows: dict,
                   progress: bool) -> tuple[MatchHead, dict]:
    """1 positive + n negatives on training users, Platt scaling on validation users, metrics on test users."""
    t_match = time.perf_counter()
    head = MatchHead(
        encoder.dim, V.shape[1], MatchHeadConfig(hidden=cfg.match_hidden, negatives=cfg.match_negatives)
    )
    match_losses = train_match_head(
        head,
        encode_rows(encoder, V, rows["train"]),
        V,
        rows["train"].target,
        epochs=cfg.match_epochs,
        seed=cfg.seed,
        progress=progress,
    )
    rng = np.random.default_rng(cfg.seed + 1)
    match = {"negatives_per_positive": cfg.match_negatives, "train_loss": match_losses}
    test = rows["test"]
    with torch.no_grad():
        u, a, y = match_pairs(
            encode_rows(encoder, V, rows["validation"]),
            V,
            rows["validation"].target,
            cfg.match_negatives,
            rng,
        )
        match["platt_a"], match["platt_b"] = head.fit_platt(head(u, a).numpy(), y.numpy())
        u, a, y = match_pairs(encode_rows(encoder, V, test), V, test.target, cfg.match_negatives, rng)
        logits = head(u, a)
        raw, cal = torch.sigmoid(logits).numpy(), head.calibrate(logits).numpy()
        cosine = (u * encoder.item_space(a)).sum(-1).numpy()
    from sklearn.metrics import log_loss, roc_auc_score

    match.update(
        {
            "test_auc": float(roc_auc_score(y, cal)),
            "test_auc_encoder_cosine": float(roc_auc_score(y, cosine)),
            "test_ece_raw": ece(y.numpy(), raw),
            "test_ece_calibrated": ece(y.numpy(), cal),
            "test_logloss_calibrated": float(log_loss(y.numpy(), cal, labels=[0, 1])),
            "test_pairs": int(len(y)),
            "seconds": time.perf_counter() - t_match,
        }
    )
    return head, match


def data_summary(cfg: EncodersConfig, ids: list[str], users: list, seqs: dict, rows: dict) -> dict:
    return {
        "source": Path(cfg.data).name,
        "format": cfg.format,
        "items": len(ids),
        "users": len(users),
        "users_per_split": {s: len(v) for s, v in seqs.items()},
        "rows_per_split": {s: len(r) for s, r in rows.items()},
        "test_protocol": "every history step t>=1 of each held-out test user; full-catalog ranking, "
        "nothing masked, ties count half",
    }


def run(cfg: EncodersConfig) -> dict:
    """Train the user encoder and the match head on ``cfg.data``, save ``cfg.out/user_model``; the metrics."""
    from creator.io import load_catalog

    if not cfg.data or not cfg.out:
        raise ValueError("--data and --out are required (see hllm-creator train-encoders --help)")
    out, progress = Path(cfg.out), cfg.progress
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(out / "resolved_config.yaml", cfg)
    t0, cpu0 = time.perf_counter(), time.process_time()
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    catalog = load_catalog(cfg.data, cfg.format)
    users = sorted(catalog.users.values(), key=lambda u: u.user_id)
    if cfg.max_users:
        users = users[: cfg.max_users]
    ids, texts = item_table(catalog)

    t_items = time.perf_counter()
    item_encoder = build_item_encoder(cfg.item_encoder, cache_dir=cfg.cache_dir)
    V = torch.from_numpy(np.asarray(item_encoder.encode(texts, progress=progress), dtype=np.float32))
    t_items = time.perf_counter() - t_items
    logger.info("item vectors: %d x %d in %.1fs", *V.shape, t_items)

    seqs, rows = user_rows(cfg, users, {i: k for k, i in enumerate(ids)})
    encoder = build_user_encoder(cfg, V.shape[1])

    def trained_scores(r):
        with torch.no_grad():
            enc_V = encoder.item_space(V.to(next(encoder.parameters()).device)).cpu()
            return encode_rows(encoder, V, r) @ enc_V.T

    def validate(_enc) -> float:
        return evaluate(trained_scores, rows["validation"])[0]["ndcg@10"]

    t_train = time.perf_counter()
    # rerunning the same command resumes after the last finished epoch (a new config starts afresh)
    digest = hashlib.sha256(
        json.dumps([cfg.trained_fields(), cfg.data, cfg.format], default=str).encode()
    ).hexdigest()[:12]
    history = train_next_item(encoder, V, rows["train"], fit_config(cfg), validate=validate, progress=progress,
                              checkpoint=out / f"checkpoint-{digest}.pt")
    t_train = time.perf_counter() - t_train

    counts = np.bincount(np.concatenate([np.asarray(s) for s in seqs["train"]]), minlength=len(ids))
    methods = {
        "popularity": lambda r: popularity_scores(counts, len(r)),
        "mean_history_cosine": lambda r: mean_history_scores(V, r.hist),
        "user_encoder": trained_scores,
    }
    results, deltas = rank_test_users(cfg, methods, rows["test"])
    head, match = fit_match_head(cfg, encoder, V, rows, progress)

    model = UserModel(
        encoder,
        head,
        item_encoder.name if not cfg.item_encoder.startswith("lm") else cfg.item_encoder,
        item_encoder=item_encoder,
    )
    model.save_pretrained(out / "user_model")
    metrics = {
        "data": data_summary(cfg, ids, users, seqs, rows),
        "test": results,
        "user_encoder_minus_mean_history": deltas,
        "match_head": match,
        "training": {
            **history,
            "item_vectors_seconds": t_items,
            "train_seconds": t_train,
            "parameters": sum(p.numel() for p in encoder.parameters()),
        },
        "total_seconds": time.perf_counter() - t0,
        "total_cpu_seconds": time.process_time() - cpu0,  # all threads; on a busy machine wall > this
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(model_card(cfg, metrics, cfg.data))
    return metrics


def metrics_table(metrics: dict) -> str:
    lines = ["| method | Recall@10 | Recall@50 | NDCG@10 |", "|---|---|---|---|"]
    for name, m in metrics["test"].items():
        lines.append(f"| {name} | {m['recall@10']:.4f} | {m['recall@50']:.4f} | {m['ndcg@10']:.4f} |")
    d = metrics["user_encoder_minus_mean_history"]
    lines.append(
        "| encoder - mean (95% CI) | "
        + " | ".join(
            f"{d[k]['mean']:+.4f} [{d[k]['ci95'][0]:+.4f}, {d[k]['ci95'][1]:+.4f}]"
            for k in ("recall@10", "recall@50", "ndcg@10")
        )
        + " |"
    )
    return "\n".join(lines)


def model_card(cfg: EncodersConfig, metrics: dict, data: str) -> str:
    m, d = metrics["match_head"], metrics["data"]
    return f"""# User model (item encoder + user encoder + match head)

Trained by `hllm-creator train-encoders` on `{d["source"]}` ({d["format"]}): {d["items"]} items,
{d["users"]} users split by user {d["users_per_split"]}.

- Item encoder: `{cfg.item_encoder}` (frozen; item text = title).
- User encoder: {
        "HF backbone " + str(cfg.backbone)
        if cfg.backbone
        else f"transformer from scratch, {cfg.layers} layers, hidden {cfg.hidden}, {cfg.heads} heads"
    },
  learnable user token, last {cfg.max_history} items, mean-of-history skip: {cfg.mean_skip}.
  Objective: InfoNCE next-item, in-batch + {cfg.sampled_negatives} sampled negatives.
- Match head: 1 positive + {m["negatives_per_positive"]} sampled negatives, BCE; Platt scaling fitted on
  validation users (a={m["platt_a"]:.3f}, b={m["platt_b"]:.3f}). A probability means "this ad is the user's
  next item, among 1 true and {m["negatives_per_positive"]} random catalog items".

## Held-out users ({d["test_protocol"]})

{metrics_table(metrics)}

Match head on test users: AUC {m["test_auc"]:.4f} (encoder cosine on the same pairs {
        m["test_auc_encoder_cosine"]:.4f}),
ECE {m["test_ece_raw"]:.4f} raw -> {m["test_ece_calibrated"]:.4f} calibrated, {m["test_pairs"]} pairs.

Load it: `UserModel.from_pretrained("user_model")`. Limits: trained on one catalog; the item encoder is
frozen; histories here are short, so the user encoder is deliberately small.
"""


def parse_config(argv: list[str] | None = None) -> EncodersConfig:
    """``EncodersConfig`` from defaults, then ``--config YAML``, then the flags."""
    return parse([EncodersConfig], argv, __doc__.split("\n\n")[0], f"example:\n  {EXAMPLE}")[0]


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(argv)
    metrics = run(cfg)
    print(metrics_table(metrics))
    m = metrics["match_head"]
    print(
        f"match head: AUC {m['test_auc']:.4f}, ECE {m['test_ece_calibrated']:.4f} (calibrated); "
        f"total {metrics['total_seconds']:.0f}s -> {cfg.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
