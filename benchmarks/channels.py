"""Titles per channel: how many catalog titles already break each channel, what the fallback serves, and
(given ``generate --channel`` outputs) what was served and whether it complies.

    python benchmarks/channels.py --ads examples/office_products_sample
    python benchmarks/channels.py --ads examples/office_products_sample \\
        --runs google-rsa-headline=runs/gen-headline generic=runs/gen-generic

Table 1, per channel: the share of the catalog's own titles that the channel's guard rejects (the
marketer's baseline) and the most common rules; what the channel fallback serves for each ad when no
generated title passes (original as it is, a shortened title of the ad's words, or nothing); characters and
words of those titles. Table 2, per ``--runs`` folder (``generate --channel NAME --out DIR``): the share of
kept pairs served personalized / shortened / original (incl. fallback) / withheld, rule violations among
the served titles under that channel's guard (goal 0), characters and words per served title.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from creator.channels.presets import CHANNELS
from creator.channels.shortening import channel_fallback
from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
from creator.io import load_catalog


def catalog_table(ads: list, names: list[str]) -> list[str]:
    brands = known_brands_from_ads(ads)
    lines = ["| channel | max chars | catalog titles violating | top rules | fallback: original / shortened / "
             "withheld | chars / words of fallback titles |", "|---|---:|---:|---|---|---|"]
    for name in names:
        guard = Guard(GuardConfig.for_channel(name), known_brands=brands)
        verdicts = [guard.check(a.title, a, original_title=a.title) for a in ads]
        bad = sum(not v.passed for v in verdicts)
        rules = Counter(f.rule for v in verdicts for f in {f.rule: f for f in v.failures}.values())
        served = [channel_fallback(a, guard) for a in ads]
        kinds = Counter(s for _, s in served)
        titles = [t for t, s in served if s != "withheld"]
        chars = sum(guard.channel.width(t) for t in titles) / max(len(titles), 1)
        words = sum(len(t.split()) for t in titles) / max(len(titles), 1)
        top = ", ".join(f"{r} {n}" for r, n in rules.most_common(3)) or "-"
        lines.append(f"| {name} | {CHANNELS[name].max_chars} | {bad / len(ads):.1%} ({bad}/{len(ads)}) | {top} | "
                     f"{kinds['original'] / len(ads):.1%} / {kinds['shortened'] / len(ads):.1%} / "
                     f"{kinds['withheld'] / len(ads):.1%} | {chars:.1f} / {words:.1f} |")
    return lines


def runs_table(ads: list, runs: dict[str, Path]) -> list[str]:
    by_id = {a.ad_id: a for a in ads}
    brands = known_brands_from_ads(ads)
    lines = ["| channel | kept pairs | personalized | shortened | original | withheld | violations among served "
             "| chars / words |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, folder in runs.items():
        guard = Guard(GuardConfig.for_channel(name), known_brands=brands)
        rows = _creatives(folder)
        summary = json.loads((folder / "summary.json").read_text())
        kept = summary["pairs_generated"] or 1
        src = Counter(r["source"] for r in rows)
        # kept pairs only: pruned pairs are "original" (or shortened/withheld as pruned_*) in the creatives
        pruned_short, pruned_held = summary.get("pruned_shortened", 0), summary.get("pruned_withheld", 0)
        served = [r for r in rows if r["source"] != "withheld"]
        bad = sum(not guard.check(r["title"], by_id[r["ad_id"]], original_title=by_id[r["ad_id"]].title).passed
                  for r in served)
        chars = sum(guard.channel.width(r["title"]) for r in served) / max(len(served), 1)
        words = sum(len(r["title"].split()) for r in served) / max(len(served), 1)
        lines.append(f"| {name} | {kept} | {src['personalized'] / kept:.1%} | "
                     f"{(src['shortened'] - pruned_short) / kept:.1%} | {summary['fallbacks'] / kept:.1%} | "
                     f"{(src['withheld'] - pruned_held) / kept:.1%} | {bad}/{len(served)} | "
                     f"{chars:.1f} / {words:.1f} |")
    return lines


def _creatives(folder: Path) -> list[dict]:
    for name in ("creatives.jsonl", "creatives.parquet", "creatives.csv"):
        path = folder / name
        if path.exists():
            if path.suffix == ".jsonl":
                return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            import pandas as pd

            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"ad_id": str})
            return frame.to_dict("records")
    raise SystemExit(f"error: {folder}: no creatives.jsonl/.parquet/.csv; pass a generate --out folder")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ads", default="examples/office_products_sample", help="catalog folder or file")
    p.add_argument("--format", default="auto")
    p.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=list(CHANNELS))
    p.add_argument("--runs", nargs="*", default=[], metavar="CHANNEL=DIR", help="generate --channel outputs")
    args = p.parse_args(argv)
    ads = list(load_catalog(args.ads, args.format).ads.values())
    print(f"catalog: {args.ads} ({len(ads)} ads)\n")
    print("\n".join(catalog_table(ads, args.channels)))
    runs = dict(spec.split("=", 1) for spec in args.runs)
    if runs:
        print()
        print("\n".join(runs_table(ads, {k: Path(v) for k, v in runs.items()})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
