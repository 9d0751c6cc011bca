"""How much the judge's held-out AUC moves with the user split: the shipped config trained once per seed.

    python benchmarks/reward_splits.py --data ../shared/data/amazon_office_products \
        --seeds 0 1 2 3 4 --out runs/reward_splits

The seed picks which users are held out (``split_users`` hashes ``seed:user_id``) and the network's
initialisation, so each run is tested on other users. With a few hundred test users one AUC has a
standard error of about 0.005 from the sampled negatives alone; which users are held out moves it
more. The table gives each seed's numbers, their mean, standard deviation and a 95% t-interval for
the mean. Resumable: a seed whose ``OUT/seedN/metrics.json`` exists with the same resolved config
(apart from output and cache folders) is read, not retrained.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout this script lives in

from benchmarks.reward import machine, nest_model  # noqa: E402

IGNORED_KEYS = ("out", "cache_dir", "threads")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def same_run(path: Path, cfg_dict: dict[str, Any]) -> bool:
    """True when ``path`` holds a finished run of this config (output and cache folders aside)."""
    if not (path / "metrics.json").exists() or not (path / "resolved_config.yaml").exists():
        return False
    saved = yaml.safe_load((path / "resolved_config.yaml").read_text()) or {}
    return all(saved.get(k) == cfg_dict.get(k) for k in (saved.keys() | cfg_dict.keys()) - set(IGNORED_KEYS))


def summary(values: list[float]) -> str:
    """Mean ± standard deviation and the 95% t-interval of the mean."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return f"{m:.4f}"
    sd = statistics.stdev(values)
    half = T_975.get(len(values) - 1, 1.96) * sd / math.sqrt(len(values))
    return f"{m:.4f} ± {sd:.4f} (95% CI {m - half:.4f} to {m + half:.4f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="catalog folder, e.g. ../shared/data/amazon_office_products")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--config", default="training/configs/reward.yaml")
    parser.add_argument("--out", default="runs/reward_splits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args(argv)

    from creator.config import load, read_yaml
    from training.reward.config import RewardTrainConfig
    from training.reward.train import train

    print(f"machine: {machine()}")
    rows = []
    for seed in args.seeds:
        overrides: dict[str, Any] = {"data": args.data, "format": args.format, "seed": seed}
        overrides["out"] = str(Path(args.out) / f"seed{seed}")
        for item in args.set:
            k, _, v = item.partition("=")
            overrides[k] = yaml.safe_load(v)
        cfg = load(RewardTrainConfig, args.config, **nest_model(overrides, read_yaml(args.config)))
        out = Path(cfg.out)
        if same_run(out, cfg.to_dict()):
            metrics = json.loads((out / "metrics.json").read_text())
            print(f"seed {seed}: read {out}/metrics.json")
        else:
            metrics = train(cfg)
        r = metrics["results"]["sampled_uniform"]
        rows.append(
            {
                "seed": seed,
                "test_users": metrics["users"]["test"],
                "auc": r["reward"]["auc"],
                "gauc": r["reward"]["gauc"],
                "cosine": r["cosine"]["auc"],
                "popularity": r["popularity"]["auc"],
                "val_auc": metrics["best_val_auc"],
                "epochs": metrics["validation"]["best_epoch"],
                "seconds": metrics["total_seconds"],
            }
        )
    print("\n## Test AUC with 8 uniform negatives, one user split per seed\n")
    print(
        "| seed | test users | reward AUC | gAUC | cosine | popularity | reward − cosine "
        "| validation AUC (epoch) | run |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        print(
            f"| {x['seed']} | {x['test_users']} | {x['auc']:.4f} | {x['gauc']:.4f} | {x['cosine']:.4f} | "
            f"{x['popularity']:.4f} | {x['auc'] - x['cosine']:+.4f} | {x['val_auc']:.4f} ({x['epochs']}) | "
            f"{x['seconds']:.0f} s |"
        )
    print()
    for key, label in (("auc", "reward AUC"), ("gauc", "reward gAUC"), ("val_auc", "validation AUC")):
        print(f"- {label}: {summary([x[key] for x in rows])}")
    print(f"- reward − cosine: {summary([x['auc'] - x['cosine'] for x in rows])}")
    (Path(args.out) / "splits.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
