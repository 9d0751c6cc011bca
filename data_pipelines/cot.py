"""Build the CoT dataset: profile -> CoT title -> fact check -> filters -> user-disjoint split -> pairs.

    hllm-creator build-cot --data ../shared/data/amazon_office_products --format amazon2018 \\
        --teacher offline --out runs/cot
    hllm-creator build-cot --data ../shared/data/amazon_office_products --teacher openai \\
        --teacher-model Qwen/Qwen3-8B --base-url http://localhost:8000/v1 --concurrency 64 --out runs/cot-qwen

For every (user with history up to t, item at t) row of the catalog: the teacher profiles the
user from the last ``history_len`` titles (oldest first), writes ``candidates`` CoT titles for the
item, the guard (``creator.guard.check``) checks each (plus, with ``--llm-fact-check``, the teacher);
the best-scoring grounded candidate becomes the row, the rest feed preference pairs. Nothing is
dropped silently: every rejected row is written with its reason. Responses are cached in SQLite,
so a killed run restarts where it stopped.

Outputs in ``--out``: ``cot.parquet`` (HLLM-Creator columns + CoT fields, ``split``),
``rejected.parquet`` (``reject_reason``), ``pairs.parquet``, ``failures.jsonl`` (every failed
teacher attempt), ``summary.json``, ``resolved_config.yaml``, ``cache.sqlite``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
from creator.io import load_catalog
from data_pipelines.cot_builder import CoTBuilder
from data_pipelines.cot_config import TEACHERS, CoTConfig
from data_pipelines.preference import load_scorer
from data_pipelines.teachers import Teacher


def print_table(summary: dict[str, Any]) -> None:
    lines = [("rows", summary["rows"]), ("built", summary["built"]), ("rejected", summary["rejected"])]
    lines += [(f"  rejected: {k}", v) for k, v in summary["rejected_by_reason"].items()]
    lines += [
        ("preference pairs", summary["pairs"]),
        ("failed after retries", summary["requests_failed_after_retries"]),
        ("succeeded after retries", summary["requests_with_retries"]),
        ("from cache", summary["from_cache"]),
        ("sent to teacher", summary["sent_to_teacher"]),
        ("seconds", summary["seconds"]),
    ]
    width = max(len(k) for k, _ in lines)
    print(f"build-cot ({summary['teacher']})")
    for k, v in lines:
        print(f"  {k:<{width}}  {v:>8}")


def parse_args(argv: list[str] | None) -> CoTConfig:
    p = argparse.ArgumentParser(
        prog="hllm-creator build-cot",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  hllm-creator build-cot --data ../shared/data/amazon_office_products "
        "--format amazon2018 --teacher offline --out runs/cot --limit 200",
    )
    p.add_argument("--config", help="YAML with any of the options below (flags override it)")
    p.add_argument("--data", help="catalog folder or file (see 'hllm-creator data')")
    p.add_argument("--format", help="amazon2018 | mind | hllm | jsonl | csv | parquet | auto")
    p.add_argument("--out", help="output folder")
    p.add_argument("--limit", type=int, help="build only the first N rows")
    g = p.add_argument_group("teacher")
    g.add_argument("--teacher", choices=TEACHERS)
    g.add_argument("--teacher-model", dest="teacher_model",
                   help="model id (openai), HF id/folder (hf); offline: profile (default) or similarity")
    g.add_argument(
        "--base-url", dest="base_url", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1"
    )
    g.add_argument("--api-key", dest="api_key", help="default: $OPENAI_API_KEY (or EMPTY for vllm serve)")
    g.add_argument("--concurrency", type=int)
    g.add_argument("--timeout-s", dest="timeout_s", type=float)
    g.add_argument("--max-retries", dest="max_retries", type=int)
    g.add_argument("--hf-batch-size", dest="hf_batch_size", type=int)
    g.add_argument("--chunk-rows", dest="chunk_rows", type=int, help="rows per pipeline chunk (default 256)")
    g.add_argument("--cache", help="response cache (SQLite); default OUT/cache.sqlite")
    g.add_argument(
        "--embed-cache", dest="embed_cache", help="MiniLM embedding cache folder; default OUT/embeddings"
    )
    s = p.add_argument_group("sampling")
    s.add_argument("--temperature", type=float)
    s.add_argument("--top-p", dest="top_p", type=float)
    s.add_argument("--max-tokens", dest="max_tokens", type=int)
    s.add_argument("--seed", type=int)
    c = p.add_argument_group("titles, checks and splits")
    c.add_argument("--candidates", type=int, help="CoT titles per (user, ad); >= 2 gives preference pairs")
    c.add_argument("--history-len", dest="history_len", type=int)
    c.add_argument("--max-chars", dest="max_chars", type=int)
    c.add_argument("--channel", help="channel preset (google-rsa-headline, meta-headline, ...): its length and "
                   "rules for the teacher's titles; default generic")
    c.add_argument("--max-added-chars", dest="max_added_chars", type=int)
    c.add_argument("--llm-fact-check", dest="llm_fact_check", action="store_const", const=True)
    c.add_argument("--scorer", help="lexical | minilm | reward:DIR")
    c.add_argument("--validation-fraction", dest="validation_fraction", type=float)
    c.add_argument("--test-fraction", dest="test_fraction", type=float)
    args = p.parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        import yaml

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        unknown = set(loaded) - CoTConfig.field_names()
        if unknown:
            raise ValueError(
                f"{args.config}: unknown keys {sorted(unknown)}; valid: {sorted(CoTConfig.field_names())}"
            )
        values.update(loaded)
    values.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
    for name in ("data", "out"):
        if not values.get(name):
            p.error(f"--{name} is required (or set it in --config)")
    return CoTConfig(**values)


def make_teacher(cfg: CoTConfig, known_brands: list[str], encoder: Any = None) -> Teacher:
    """The teacher ``cfg.teacher`` names: offline (MiniLM, with the guard), openai (HTTP) or hf (local)."""
    if cfg.teacher == "offline":
        from data_pipelines.teachers.offline import OfflineTeacher

        guard = Guard(
            GuardConfig(max_chars=cfg.max_chars, max_added_chars=cfg.max_added_chars, flag_unchanged=True,
                        channel=cfg.channel),
            known_brands=known_brands,
        )
        return OfflineTeacher(encoder, known_brands=known_brands, guard=guard,
                              personalize=cfg.teacher_model or "profile")
    if cfg.teacher == "openai":
        from data_pipelines.teachers.openai_http import OpenAIConfig, OpenAITeacher

        return OpenAITeacher(
            OpenAIConfig(
                model=cfg.teacher_model,
                base_url=cfg.base_url,
                api_key=cfg.api_key,
                concurrency=cfg.concurrency,
                timeout_s=cfg.timeout_s,
                max_retries=cfg.max_retries,
            )
        )
    from data_pipelines.teachers.hf_local import HFConfig, HFTeacher

    return HFTeacher(HFConfig(model=cfg.teacher_model, batch_size=cfg.hf_batch_size))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    catalog = load_catalog(cfg.data, cfg.format).require_ads()
    encoder = None
    if cfg.teacher == "offline" or cfg.scorer == "minilm":
        from creator.modeling.item_encoder import SentenceItemEncoder

        encoder = SentenceItemEncoder(cache_dir=cfg.embed_cache or Path(cfg.out) / "embeddings")
    brands = sorted(set(known_brands_from_ads(catalog.ads.values())) | set(cfg.known_brands))
    teacher = make_teacher(cfg, brands, encoder)
    builder = CoTBuilder(cfg, catalog, teacher, scorer=load_scorer(cfg.scorer, encoder))
    summary = asyncio.run(builder.run())
    builder.write(Path(cfg.out), summary)
    print_table(summary)
    print(
        f"wrote {cfg.out}/cot.parquet ({summary['built']} rows), rejected.parquet, pairs.parquet, "
        "summary.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
