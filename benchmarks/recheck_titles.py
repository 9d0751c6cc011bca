"""Re-check titles already written (CoT candidates, served creatives) with the current guard.

Prints how many fail, by rule, so a change to a grounding rule can be measured on titles that the
previous rule let through. Run it once per code version (PYTHONPATH) to compare two rules:

    python benchmarks/recheck_titles.py --catalog examples/office_products_sample \
        --cot runs/quickstart/artifacts/cot/cot.parquet --generate-out runs/quickstart/generate
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from creator.guard.check import Guard, known_brands_from_ads
from creator.io import load_catalog


def titles_of(args: argparse.Namespace) -> dict[str, list[tuple[str, str]]]:
    """source -> [(ad_id, title)] for each file given."""
    out: dict[str, list[tuple[str, str]]] = {}
    if args.cot:
        rows = pd.read_parquet(args.cot)
        out["cot candidates"] = [(str(r.ad_id), c["title"]) for r in rows.itertuples()
                                 for c in json.loads(r.candidates) if c.get("title")]
    if args.generate_out:  # every candidate, from the shards that generate writes before the guard picks
        rows = [json.loads(line) for f in sorted(Path(args.generate_out, "shards").glob("*.jsonl"))
                for line in f.read_text().splitlines() if line.strip()]
        out["generated candidates"] = [(str(r["ad_id"]), c) for r in rows for c in r.get("candidates") or []]
    if args.creatives:
        lines = Path(args.creatives).read_text().splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        out["served personalized"] = [(str(r["ad_id"]), r["title"]) for r in rows if r["source"] == "personalized"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog", required=True)
    p.add_argument("--format", default="auto")
    p.add_argument("--cot", help="cot.parquet written by build-cot")
    p.add_argument("--creatives", help="creatives.jsonl written by generate")
    p.add_argument("--generate-out", help="a generate --out folder: every candidate in its shards")
    p.add_argument("--show", type=int, default=5, help="failing titles listed per source")
    args = p.parse_args()
    ads = load_catalog(args.catalog, args.format).ads
    guard = Guard(known_brands=known_brands_from_ads(ads.values()))
    for source, pairs in titles_of(args).items():
        failed, rules, shown = 0, Counter(), []
        for ad_id, title in pairs:
            verdict = guard.check(title, ads[ad_id])
            if not verdict.passed:
                failed += 1
                rules.update({f.rule for f in verdict.failures})
                if len(shown) < args.show:
                    shown.append(f"    [{ad_id}] {title!r}: " + "; ".join(f.reason for f in verdict.failures))
        rate = failed / max(1, len(pairs))
        print(f"{source}: {failed} of {len(pairs)} fail the guard ({rate:.1%}); by rule: {dict(rules.most_common())}")
        print("\n".join(shown))


if __name__ == "__main__":
    main()
