"""Benchmark the user model: full train-encoders run, time per epoch, users embedded per second, metrics.

    python benchmarks/encoders.py --data ../shared/data/amazon_office_products --threads 2

Runs ``train-encoders`` with the default config (item vectors come from the on-disk cache after
the first run), then embeds every user of the catalog with the saved model twice: from precomputed
item vectors (the user encoder alone) and through ``embed_users`` with the cached item encoder.
Prints the machine, the timings and the held-out metrics table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", required=True, help="catalog folder, e.g. ../shared/data/amazon_office_products"
    )
    parser.add_argument("--format", default="amazon2018")
    parser.add_argument(
        "--config", default=str(Path(__file__).resolve().parents[1] / "training/configs/encoders.yaml")
    )
    parser.add_argument("--out", default="runs/bench_encoders")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI box has 2 cores)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="embedding passes to time (best is reported)"
    )
    parser.add_argument(
        "--from-run",
        help="reuse a finished `train-encoders --out DIR` (its metrics.json) instead of training again",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from creator.config import load
    from creator.io import load_catalog
    from creator.modeling.user_model import UserModel
    from training.encoders.config import EncodersConfig
    from training.encoders.train import metrics_table, run

    if args.from_run:
        out = Path(args.from_run)
        cfg = load(EncodersConfig, out / "resolved_config.yaml")
        metrics = json.loads((out / "metrics.json").read_text())
        wall = metrics["total_seconds"]
    else:
        out = Path(args.out)
        cfg = load(EncodersConfig, args.config, threads=args.threads, data=args.data, format=args.format,
                   out=str(out), progress=False)
        start = time.perf_counter()
        metrics = run(cfg)
        wall = time.perf_counter() - start

    users = list(load_catalog(args.data, args.format).users.values())
    model = UserModel.from_pretrained(out / "user_model", cache_dir=cfg.cache_dir)
    titles = sorted({h.title for u in users for h in u.recent(model.max_history)})
    vecs = dict(zip(titles, model.embed_items(titles), strict=True))  # warm the item encoder and its cache
    timings = {}
    for name, kwargs in (
        ("user encoder only (item vectors given)", {"item_vecs": vecs}),
        ("embed_users (item vectors from the cache)", {}),
    ):
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            model.embed_users(users, batch_size=256, **kwargs)
            best = min(best, time.perf_counter() - t)
        timings[name] = best
    tr = metrics["training"]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cpus visible, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"data: {metrics['data']['items']} items, {metrics['data']['users']} users, "
        f"rows {metrics['data']['rows_per_split']}"
    )
    print("\n| stage | value |\n|---|---|")
    print(
        f"| item vectors ({cfg.item_encoder}, cached after the first run) | "
        f"{tr['item_vectors_seconds']:.1f} s |"
    )
    print(
        f"| time per epoch (training only, mean of {len(tr['epoch_seconds'])}) | "
        f"{np.mean(tr['epoch_seconds']):.1f} s |"
    )
    print(f"| epochs run / best epoch | {len(tr['epoch_seconds'])} / {tr['best_epoch']} |")
    print(f"| next-item training incl. validation | {tr['train_seconds']:.0f} s |")
    print(f"| match head training + calibration + eval | {metrics['match_head']['seconds']:.0f} s |")
    print(f"| whole train-encoders run (wall) | {wall:.0f} s |")
    if "total_cpu_seconds" in metrics:
        print(f"| whole train-encoders run (CPU time, all threads) | {metrics['total_cpu_seconds']:.0f} s |")
    for name, secs in timings.items():
        print(f"| users embedded/s, {name} | {len(users) / secs:,.0f} |")
    print("\nheld-out test users:\n" + metrics_table(metrics))
    m = metrics["match_head"]
    print(
        f"\nmatch head (8 sampled negatives per positive): AUC {m['test_auc']:.4f}, encoder cosine AUC "
        f"{m['test_auc_encoder_cosine']:.4f}, ECE {m['test_ece_raw']:.4f} raw -> "
        f"{m['test_ece_calibrated']:.4f}"
    )
    (out / "benchmark.json").write_text(
        json.dumps(
            {"wall_seconds": wall, "users_per_second": {k: len(users) / v for k, v in timings.items()}},
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
