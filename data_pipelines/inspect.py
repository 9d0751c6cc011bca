"""``hllm-creator data``: inspect, convert or sample a catalog.

    hllm-creator data inspect ../shared/data/amazon_office_products --format amazon2018
    hllm-creator data inspect ../shared/data/mind_small_sample --format mind
    hllm-creator data inspect my_ads.csv --format csv --on-error skip --rejects rejects.jsonl
    hllm-creator data convert ../shared/data/amazon_office_products --format amazon2018 --to jsonl --out catalog/
    hllm-creator data sample ../shared/data/amazon_office_products --users 1000 --ads 300 \
        --out examples/office_products_sample
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from creator.config import run_verb
from creator.io import FORMATS, Catalog, load_catalog, write_records, write_rejects

EXAMPLES = __doc__.split("\n\n", 1)[1]
ACTIONS = ("inspect", "convert", "sample")


@dataclass
class CatalogSource:
    """The catalog an action reads (given as the first argument after the action, or ``path:`` in a YAML)."""

    path: str | None = field(default=None, metadata={"help": "a file or folder holding the catalog"})
    format: str = field(default="auto", metadata={"help": f"input format: auto (detect) or one of {FORMATS}"})
    on_error: Literal["fail", "skip"] = field(default="fail", metadata={
        "help": "fail at the first bad row (default) or skip bad rows into a rejects file"})
    rejects: str = field(default="rejects.jsonl", metadata={"help": "where skipped rows go (with --on-error skip)"})
    max_points: int = field(default=8, metadata={"help": "selling points kept per ad"})
    show: int = field(default=20, metadata={"help": "problems and warnings listed (default 20)"})

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("no catalog given: hllm-creator data inspect PATH (a file or folder)")
        if self.format not in ("auto", *FORMATS):
            raise ValueError(f"--format must be auto or one of {', '.join(FORMATS)}, got {self.format!r}")


@dataclass
class InspectConfig(CatalogSource):
    """``data inspect``: counts, history stats, missing ids, cleaning stats, problems."""

    json: bool = field(default=False, metadata={"help": "print the summary as JSON"})


@dataclass
class ConvertConfig(CatalogSource):
    """``data convert``: the catalog as the project's JSONL/CSV/Parquet records."""

    to: Literal["jsonl", "csv", "parquet"] = field(default="jsonl", metadata={"help": "output record format"})
    out: str | None = field(default=None, metadata={"help": "output folder (ads.*, users.*, impressions.*)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.out:
            raise ValueError("--out is required: the folder the records are written to")


@dataclass
class SampleConfig(CatalogSource):
    """``data sample``: a small, deterministic slice: N users and the M ads they use most, as JSONL."""

    users: int = 1000
    ads: int = 300
    seed: int = 0
    out: str | None = field(default=None, metadata={"help": "output folder (ads.jsonl, users.jsonl)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.out:
            raise ValueError("--out is required: the folder the sample is written to")


CONFIGS: dict[str, type[CatalogSource]] = {"inspect": InspectConfig, "convert": ConvertConfig,
                                           "sample": SampleConfig}


def parse_config(argv: Sequence[str] | None = None) -> CatalogSource:
    """``data ACTION [PATH] [--flags]``: the action's config from defaults, ``--config YAML``, then the flags."""
    from creator.config import parse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"usage: hllm-creator data {{{','.join(ACTIONS)}}} PATH [options]; "
              f"hllm-creator data ACTION --help lists an action's options\n\nexamples:\n{EXAMPLES}")
        raise SystemExit(0)
    if not argv or argv[0] not in ACTIONS:
        raise ValueError(f"expected an action first, one of {', '.join(ACTIONS)}; e.g.\n{EXAMPLES}")
    action, rest = argv[0], argv[1:]
    if rest and not rest[0].startswith("-"):  # the catalog as the first argument, as in the examples
        rest = ["--path", rest[0], *rest[1:]]
    return parse([CONFIGS[action]], rest, description=CONFIGS[action].__doc__, epilog="examples:\n" + EXAMPLES)[0]


def _report_problems(catalog: Catalog, args: CatalogSource) -> None:
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
    """``hllm-creator data``: parse the action's options, then ``run``."""
    return run_verb(parse_config, run, argv)


def run(config: CatalogSource) -> int:
    """Load the catalog, then inspect it, or write it (converted or sampled) as records."""
    catalog = load_catalog(config.path, config.format, on_error=config.on_error, max_points=config.max_points)
    if Path(config.path).is_dir():  # a catalog folder must hold ads; a single users or impressions file may not
        catalog.require_ads()
    if isinstance(config, InspectConfig):
        summary = catalog.summary()
        if config.json:
            summary["problems"] = [e.to_dict() for e in catalog.problems.errors]
            summary["warning_list"] = catalog.warnings
            json.dump(summary, sys.stdout, indent=2)
            print()
        else:
            print_summary(summary, catalog, config.show)
        _report_problems(catalog, config)
        return 0
    to = "jsonl"
    if isinstance(config, SampleConfig):
        catalog = sample_catalog(catalog, config.users, config.ads, config.seed)
    elif isinstance(config, ConvertConfig):
        to = config.to
    out = Path(config.out)
    write_records(catalog.ads.values(), out / f"ads.{to}")
    write_records(catalog.users.values(), out / f"users.{to}")
    if catalog.impressions:
        write_records(catalog.impressions, out / f"impressions.{to}")
    print(f"wrote {len(catalog.ads):,} ads, {len(catalog.users):,} users, {len(catalog.impressions):,} impressions "
          f"to {out}/ as {to}")
    _report_problems(catalog, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
