"""``hllm-creator data``: inspect, convert or sample a catalog.

    hllm-creator data inspect ../shared/data/amazon_office_products --format amazon2018
    hllm-creator data inspect ../shared/data/mind_small_sample --format mind
    hllm-creator data inspect my_ads.csv --format csv --on-error skip --rejects rejects.jsonl
    hllm-creator data convert ../shared/data/amazon_office_products --format amazon2018 --to jsonl --out catalog/
    hllm-creator data sample ../shared/data/amazon_office_products --users 1000 --ads 300 \
        --out examples/office_products_sample
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from creator.io import FORMATS, Catalog, load_catalog, write_records, write_rejects

EXAMPLES = __doc__.split("\n\n", 1)[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hllm-creator data", description="Inspect, convert or sample a catalog.",
                                     epilog="examples:\n" + EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("path", help="a file or folder holding the catalog")
        p.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="input format (default: detect)")
        p.add_argument("--on-error", default="fail", choices=("fail", "skip"),
                       help="fail at the first bad row (default) or skip bad rows into a rejects file")
        p.add_argument("--rejects", default="rejects.jsonl", help="where skipped rows go (with --on-error skip)")
        p.add_argument("--max-points", type=int, default=8, help="selling points kept per ad")

    p_inspect = sub.add_parser("inspect", help="counts, history stats, missing ids, cleaning stats, problems",
                               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    common(p_inspect)
    p_inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    p_inspect.add_argument("--show", type=int, default=20, help="problems and warnings listed (default 20)")

    p_convert = sub.add_parser("convert", help="write the catalog as our JSONL/CSV/Parquet records",
                               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    common(p_convert)
    p_convert.add_argument("--to", required=True, choices=("jsonl", "csv", "parquet"))
    p_convert.add_argument("--out", required=True, help="output folder (ads.*, users.*, impressions.*)")

    p_sample = sub.add_parser("sample", help="a small, deterministic slice: N users and the M ads they use most",
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    common(p_sample)
    p_sample.add_argument("--users", type=int, default=1000)
    p_sample.add_argument("--ads", type=int, default=300)
    p_sample.add_argument("--seed", type=int, default=0)
    p_sample.add_argument("--out", required=True)
    return parser


def _report_problems(catalog: Catalog, args: argparse.Namespace) -> None:
    if len(catalog.problems):
        path = write_rejects(catalog.problems, args.rejects)
        print(f"\n{len(catalog.problems)} rows rejected (reasons and raw rows in {path}):")
        for err in catalog.problems.errors[: args.show]:
            print(f"  - {err}")
        if len(catalog.problems) > args.show:
            print(f"  ... and {len(catalog.problems) - args.show} more")


def print_summary(s: dict[str, Any], catalog: Catalog, show: int) -> None:
    print(f"catalog  {s['source']}  (format {s['format']})")
    rows = [("ads", s["ads"]), ("  with selling points", s["ads_with_selling_points"]),
            ("  with facts", s["ads_with_facts"]), ("users", s["users"]),
            ("  with empty history", s["users_with_empty_history"]), ("interactions", s["interactions"]),
            ("impressions", s["impressions"]), ("clicks", s["clicks"])]
    if "references" in s:
        rows.append(("reference titles", s["references"]))
    for name, value in rows:
        print(f"  {name:<24}{value:>10,}")
    h = s["history_length"]
    print(f"  history length          min {h['min']}  median {h['median']}  mean {h['mean']}  p90 {h['p90']}"
          f"  max {h['max']}")
    if s["missing_ids"]:
        print("ids referenced but missing:")
        for where, n in s["missing_ids"].items():
            ex = ", ".join(s["missing_id_examples"].get(where, []))
            print(f"  in {where:<12}{n:>10,}  e.g. {ex}")
    else:
        print("ids referenced but missing: none")
    c = s["cleaning"]
    print("cleaning:")
    for key in ("html_paragraphs", "repaired_descriptions", "duplicate_points", "truncated_points",
                "capped_points", "instruction_like_points", "ads_without_points"):
        print(f"  {key.replace('_', ' '):<24}{c.get(key, 0):>10,}")
    print(f"  characters in / out     {c['chars_in']:,} / {c['chars_out']:,}")
    if catalog.warnings:
        print(f"warnings ({len(catalog.warnings)}):")
        for w in catalog.warnings[:show]:
            print(f"  - {w}")
        if len(catalog.warnings) > show:
            print(f"  ... and {len(catalog.warnings) - show} more")
    if s["capped_fields"]:
        print(f"capped fields: {s['capped_fields']} (over the size limit: kept, cut at a sentence boundary)")
        for c in catalog.problems.capped[:show]:
            print(f"  - {c['file']}:{c['line']}: {c['field']} {c['chars_in']:,} -> {c['chars_out']:,} characters")
    print(f"rejected rows: {s['rejected_rows']}")


def sample_catalog(catalog: Catalog, n_users: int, n_ads: int, seed: int) -> Catalog:
    """``n_users`` users drawn at random, and the ``n_ads`` items their histories use most as the ads."""
    import random
    from collections import Counter
    from dataclasses import replace

    ids = sorted(catalog.users)
    random.Random(seed).shuffle(ids)
    users = {u: catalog.users[u] for u in sorted(ids[:n_users])}
    counts = Counter(h.item_id for u in users.values() for h in u.history if h.item_id in catalog.ads)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n_ads]
    # Facts are re-derived when the sample is loaded, so improvements to the extractor apply to it.
    ads = {i: replace(catalog.ads[i], facts=[]) for i, _ in sorted(top)}
    return Catalog(ads=ads, users=users, source=catalog.source, format=catalog.format)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    catalog = load_catalog(args.path, args.format, on_error=args.on_error, max_points=args.max_points)
    if Path(args.path).is_dir():  # a catalog folder must hold ads; a single users or impressions file may not
        catalog.require_ads()
    if args.action == "inspect":
        summary = catalog.summary()
        if args.json:
            summary["problems"] = [e.to_dict() for e in catalog.problems.errors]
            summary["warning_list"] = catalog.warnings
            json.dump(summary, sys.stdout, indent=2)
            print()
        else:
            print_summary(summary, catalog, args.show)
        _report_problems(catalog, args)
        return 0
    if args.action == "sample":
        catalog = sample_catalog(catalog, args.users, args.ads, args.seed)
        args.to = "jsonl"
    out = Path(args.out)
    ext = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}[args.to]
    write_records(catalog.ads.values(), out / f"ads.{ext}")
    write_records(catalog.users.values(), out / f"users.{ext}")
    if catalog.impressions:
        write_records(catalog.impressions, out / f"impressions.{ext}")
    print(f"wrote {len(catalog.ads):,} ads, {len(catalog.users):,} users, {len(catalog.impressions):,} impressions "
          f"to {out}/ as {args.to}")
    _report_problems(catalog, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
