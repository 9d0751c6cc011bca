"""Audit a build-cot output: re-check every title with a fresh guard and describe what was built.

    hllm-creator build-cot --data ../shared/data/amazon_office_products --format amazon2018 --out runs/cot
    python benchmarks/cot_audit.py --data ../shared/data/amazon_office_products --out runs/cot

Prints: rows built vs (user, next item) rows in the catalog, titles failing each guard rule when
re-checked independently (expected: 0 everywhere), user overlap between splits (expected: 0),
title length and added characters, how the titles were made, and the preference pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creator.guard.check import RULES, Guard, GuardConfig, known_brands_from_ads  # noqa: E402
from creator.io import load_catalog  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--format", default="auto")
    p.add_argument("--out", required=True, help="a build-cot output folder")
    args = p.parse_args(argv)
    out = Path(args.out)
    catalog = load_catalog(args.data, args.format)
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((out / "resolved_config.yaml").read_text())))
    df = pd.read_parquet(out / "cot.parquet")
    pairs = pd.read_parquet(out / "pairs.parquet")
    expected = sum(1 for _ in catalog.next_item_rows(cfg.get("min_history", 1)))
    guard = Guard(
        GuardConfig(max_chars=cfg["max_chars"], max_added_chars=cfg["max_added_chars"], flag_unchanged=True),
        known_brands=known_brands_from_ads(catalog.ads.values()),
    )
    fails: Counter = Counter()
    for row in df.itertuples():
        for f in guard.check(row.response, catalog.ads[row.ad_id]).failures:
            fails[f.rule] += 1
    users = {s: set(df[df.split == s].user_id) for s in ("train", "validation", "test")}
    overlap = sum(
        len(users[a] & users[b])
        for a, b in (("train", "validation"), ("train", "test"), ("validation", "test"))
    )
    lengths = df.response.str.len().to_numpy()
    added = lengths - df.original_title.str.len().to_numpy()
    kinds = Counter(
        "picked for you"
        if r.endswith("- Picked for You")
        else "interest phrase"
        if " - for Fans of " in r
        else "selling-point hook"
        if len(sp)
        else "reordered title"
        for r, sp in zip(df.response, df.selling_points_used, strict=True)
    )
    print(f"{'rows in catalog (user, next item)':<44} {expected:>8}")
    print(f"{'rows built':<44} {len(df):>8}")
    for rule in RULES:
        print(f"{'  re-check fails: ' + rule:<44} {fails.get(rule, 0):>8}")
    print(f"{'users in more than one split':<44} {overlap:>8}")
    for s in ("train", "validation", "test"):
        print(f"{'  rows in ' + s:<44} {int((df.split == s).sum()):>8}")
    p95 = int(np.percentile(lengths, 95))
    print(f"{'title chars: median / p95 / max':<44} {int(np.median(lengths))} / {p95} / {int(lengths.max())}")
    print(f"{'added chars vs original: median / max':<44} {int(np.median(added))} / {int(added.max())}")
    for k, v in kinds.most_common():
        print(f"{'  made from: ' + k:<44} {v:>8}")
    print(f"{'preference pairs':<44} {len(pairs):>8}")
    with_failed = int(sum(len(x) > 0 for x in pairs.rejected_failures)) if "rejected_failures" in pairs else 0
    print(f"{'  rejected side failed the guard':<44} {with_failed:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
