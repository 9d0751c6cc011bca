"""Compare offline teachers: how much their titles depend on the user, and whether they stay grounded.

    python benchmarks/teacher_personalization.py --data examples/office_products_sample --out runs/bench-teachers
    python benchmarks/teacher_personalization.py --data ../shared/data/amazon_office_products \
        --format amazon2018 --limit 6000 --out runs/bench-teachers-office

Runs ``hllm-creator build-cot`` once per teacher (``--teachers``; ``similarity`` is the earlier offline
teacher, ``profile`` the one that reads the user's recurring words and angles, ``hf:MODEL`` a local
transformers teacher such as ``hf:gemma-270m``, which as a base model writes from few-shot prompts) on
the same rows and
prints, per teacher: rows kept and rejected (by reason), titles failing a fresh guard re-check, words per
title, and for ads taken by two or more users the share of distinct titles (distinct titles / users of
the ad, averaged over ads) and the share of user pairs given the very same title.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creator.guard.check import Guard, GuardConfig, known_brands_from_ads  # noqa: E402
from creator.io import load_catalog  # noqa: E402
from data_pipelines.cot import main as build_cot  # noqa: E402


def per_ad_sharing(df: pd.DataFrame) -> tuple[float, float, int]:
    """(mean share of distinct titles per ad, share of same-ad user pairs with one title, ads counted)."""
    distinct, same, pairs, ads = [], 0, 0, 0
    for _, g in df.groupby("ad_id", sort=True):
        by_user = g.drop_duplicates("user_id")
        if len(by_user) < 2:
            continue
        ads += 1
        titles = list(by_user.response)
        distinct.append(len(set(titles)) / len(titles))
        for a, b in combinations(titles, 2):
            same += a == b
            pairs += 1
    return (float(np.mean(distinct)) if distinct else float("nan")), (same / pairs if pairs else float("nan")), ads


def audit(out: Path, catalog, cfg: dict) -> dict:
    df = pd.read_parquet(out / "cot.parquet")
    rej = pd.read_parquet(out / "rejected.parquet") if (out / "rejected.parquet").exists() else pd.DataFrame()
    guard = Guard(
        GuardConfig(max_chars=cfg["max_chars"], max_added_chars=cfg["max_added_chars"], flag_unchanged=True),
        known_brands=known_brands_from_ads(catalog.ads.values()),
    )
    recheck = sum(not guard.check(t, catalog.ads[a]).passed for t, a in zip(df.response, df.ad_id, strict=True))
    distinct, same, ads = per_ad_sharing(df)
    return {
        "rows_kept": len(df),
        "rejected": dict(Counter(rej.reject_reason)) if len(rej) else {},
        "recheck_fails": int(recheck),
        "words_per_title": round(float(df.response.str.split().str.len().mean()), 2),
        "ads_with_2plus_users": ads,
        "distinct_title_share": round(distinct, 3),
        "same_title_user_pairs": round(same, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--format", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=0, help="first N rows (0: all)")
    p.add_argument("--teachers", default="similarity,profile")
    p.add_argument("--cot-flags", default="", help="more build-cot flags for every teacher, e.g. '--temperature 0' "
                   "(an LM teacher samples at 0.7 by default: greedy shows what depends on the user alone)")
    args = p.parse_args(argv)
    catalog = load_catalog(args.data, args.format)
    results = {}
    for name in args.teachers.split(","):
        out = Path(args.out) / name.replace(":", "-").replace("/", "_")
        kind, model = name.split(":", 1) if ":" in name else ("offline", name)
        flags = ["--data", args.data, "--format", args.format, "--teacher", kind, "--teacher-model", model,
                 "--candidates", "1", "--out", str(out)]
        if args.limit:
            flags += ["--limit", str(args.limit)]
        flags += args.cot_flags.split()
        if build_cot(flags):
            raise SystemExit(f"build-cot failed for teacher {name}")
        cfg = __import__("yaml").safe_load((out / "resolved_config.yaml").read_text())
        results[name] = audit(out, catalog, cfg)
    keys = list(next(iter(results.values())))
    print(f"{'':<28}" + "".join(f"{n:>22}" for n in results))
    for k in keys:
        print(f"{k:<28}" + "".join(f"{json.dumps(r[k]):>22}" for r in results.values()))
    (Path(args.out) / "teachers.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
