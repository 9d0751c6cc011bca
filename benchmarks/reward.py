"""Benchmark the reward model: training time, scoring throughput (pairs/s) and the held-out metrics table.

    python benchmarks/reward.py --data ../shared/data/amazon_office_products --out runs/bench_reward

Trains with ``training/configs/reward.yaml`` (same settings as the docs), then scores user-title
pairs with titles already embedded (the judge reranking known candidates) and with titles never
seen (MiniLM runs for each), and times ``compare`` on A/B pairs. The machine, thread count and
load average are printed with the numbers, since a shared box changes them a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", required=True, help="catalog folder, e.g. ../shared/data/amazon_office_products"
    )
    parser.add_argument("--format", default="auto")
    parser.add_argument("--config", default="training/configs/reward.yaml")
    parser.add_argument("--out", default="runs/bench_reward")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    parser.add_argument("--pairs", type=int, default=4000, help="user-title pairs to score")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args(argv)

    import torch
    import yaml

    from creator.io import load_catalog
    from creator.reward import RewardModel
    from eval.judge import compare
    from training.reward_model import load_config, metrics_table, train

    overrides = {"data": args.data, "format": args.format, "out": args.out}
    if args.threads:
        overrides["threads"] = args.threads
    for item in args.set:
        k, _, v = item.partition("=")
        overrides[k] = yaml.safe_load(v)
    cfg = load_config(args.config, overrides)
    print(f"machine: {machine()}; torch {torch.__version__}, {cfg.threads} thread(s)")
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = train(cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    torch.set_num_threads(cfg.threads)
    rm = RewardModel.from_pretrained(Path(args.out) / "reward_model", cache_dir=cfg.cache_dir)
    cat = load_catalog(args.data, args.format)
    rng = np.random.default_rng(0)
    users = [cat.users[u] for u in rng.choice(sorted(cat.users), args.pairs)]
    ads = [cat.ads[a] for a in rng.choice(sorted(cat.ads), args.pairs)]
    known = [a.title for a in ads]
    rm.score(users[:64], known[:64], ads[:64])  # warm up (model load, first batch)
    t = time.perf_counter()
    rm.score(users, known, ads)
    known_rate = args.pairs / (time.perf_counter() - t)
    fresh = [f"{a.title} - pick {i}" for i, a in enumerate(ads)]
    t = time.perf_counter()
    rm.score(users, fresh, ads)
    fresh_rate = args.pairs / (time.perf_counter() - t)
    t = time.perf_counter()
    compare(rm, users, known, fresh, ads)
    compare_rate = args.pairs / (time.perf_counter() - t)

    print("\n## Held-out metrics (test users)\n")
    print(metrics_table(metrics["results"]))
    print("\n## Cost\n")
    print("| measure | value |\n|---|---|")
    print(
        f"| training (epochs run: {sum(1 for _ in open(Path(args.out) / 'train_log.jsonl'))}) "
        f"| {metrics['train_seconds']:.0f} s wall |"
    )
    print(f"| whole train-reward run (load, embed, train, evaluate) | {wall:.0f} s wall, {cpu:.0f} s CPU |")
    print(f"| scoring, titles already embedded | {known_rate:,.0f} pairs/s |")
    print(f"| scoring, new titles (MiniLM per title) | {fresh_rate:,.0f} pairs/s |")
    print(f"| compare A vs B (both new to the cache on first run) | {compare_rate:,.0f} pairs/s |")
    print(f"\nmachine at the end: {machine()}")
    (Path(args.out) / "benchmark.json").write_text(
        json.dumps(
            {
                "train_seconds": metrics["train_seconds"],
                "run_wall_s": wall,
                "run_cpu_s": cpu,
                "score_known_pairs_per_s": known_rate,
                "score_new_pairs_per_s": fresh_rate,
                "compare_pairs_per_s": compare_rate,
                "threads": cfg.threads,
                "machine": machine(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
