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
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout this script lives in


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def gaming_table(rm, catalog, n: int, seed: int = 0) -> str:
    """How often each attack beats the ad's own title for random (user, ad) pairs, raw vs judged."""
    from eval.judge import compare

    rng = np.random.default_rng(seed)
    users = [catalog.users[u] for u in rng.choice(sorted(catalog.users), n)]
    ads = [catalog.ads[a] for a in rng.choice(sorted(catalog.ads), n)]
    original = [a.title for a in ads]
    attacks = {
        "paste the last history title": [u.history[-1].title for u in users],
        "append the last history title": [
            f"{a.title} | {u.history[-1].title}" for a, u in zip(ads, users, strict=True)
        ],
        "repeat the title's first two words x3": [
            " ".join([" ".join(a.title.split()[:2])] * 3 + [a.title]) for a in ads
        ],
        "append the user's history words": [
            a.title + " " + " ".join(h.title.split()[0] for h in u.history[-4:])
            for a, u in zip(ads, users, strict=True)
        ],
        "pad to 250+ characters": [
            a.title + ", Premium Quality for Home, Office and School" * 5 for a in ads
        ],
    }

    class Raw:
        def score(self, users, titles, ads=None):
            return rm.score(users, titles, ads, raw=True)

    lines = [
        "| attack vs the ad's own title | wins, raw click model | wins, judge (penalties) |",
        "|---|---|---|",
    ]
    for name, titles in attacks.items():
        raw = compare(Raw(), users, titles, original, ads, margin=0.0)
        judged = compare(rm, users, titles, original, ads, margin=0.0)
        lines.append(f"| {name} | {raw.good / n:.1%} | {judged.good / n:.1%} |")
    return "\n".join(lines)


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
    parser.add_argument(
        "--gaming-only", metavar="MODEL_DIR", help="skip training: gaming table for this model"
    )
    args = parser.parse_args(argv)

    import torch
    import yaml

    from creator.config import load, read_yaml
    from creator.io import load_catalog
    from creator.reward.model import RewardModel
    from eval.judge import compare
    from training.reward.config import RewardTrainConfig
    from training.reward.train import metrics_table, train

    overrides = {"data": args.data, "format": args.format, "out": args.out}
    if args.threads:
        overrides["threads"] = args.threads
    for item in args.set:
        k, _, v = item.partition("=")
        overrides[k] = yaml.safe_load(v)
    cfg = load(RewardTrainConfig, args.config, **nest_model(overrides, read_yaml(args.config)))
    if args.gaming_only:
        torch.set_num_threads(cfg.threads)
        rm = RewardModel.from_pretrained(args.gaming_only, cache_dir=cfg.cache_dir, gaming=cfg.model.gaming)
        print(gaming_table(rm, load_catalog(args.data, args.format), args.pairs))
        return 0
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
    val = [json.loads(x)["val_auc"] for x in open(Path(args.out) / "train_log.jsonl")]
    print(f"| validation AUC by epoch (best kept) | {', '.join(f'{v:.4f}' for v in val)} |")
    probes = metrics.get("validation", {})
    for key, label in (
        ("auc_unknown_ids", "validation AUC, every item id unknown"),
        ("auc_cold_ads", "validation AUC, cold ads (ids unknown, co-occurrence 0)"),
    ):
        if probes.get(key) is not None:
            print(f"| {label} | {probes[key]:.4f} |")
    if metrics.get("refit"):
        r = metrics["refit"]
        print(f"| refit on training + validation users ({r['users']}) | {r['epochs']} epochs, included above |")
    print(f"| scoring, titles already embedded | {known_rate:,.0f} pairs/s |")
    print(f"| scoring, new titles (MiniLM per title) | {fresh_rate:,.0f} pairs/s |")
    print(f"| compare A vs B (both new to the cache on first run) | {compare_rate:,.0f} pairs/s |")
    print("\n## Gaming\n")
    print(gaming_table(rm, cat, min(args.pairs, 2000)))
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


def nest_model(overrides: dict, yaml_config: dict) -> dict:
    """``--set model.k=v`` (dotted, this script's own flag) merged into the YAML's ``model:`` block."""
    flat = {k: v for k, v in overrides.items() if not k.startswith("model.")}
    dotted = {k[len("model."):]: v for k, v in overrides.items() if k.startswith("model.")}
    if dotted:
        model = dict(flat.get("model", yaml_config.get("model") or {}))
        for key, value in dotted.items():
            node, parts = model, key.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
        flat["model"] = model
    return flat


if __name__ == "__main__":
    raise SystemExit(main())
