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

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from creator.config import ConfigError, parse
from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
from creator.io import load_catalog
from data_pipelines.cot_builder import CoTBuilder
from data_pipelines.cot_config import CoTConfig
from data_pipelines.preference import load_scorer
from data_pipelines.teachers import Teacher

logger = logging.getLogger(__name__)


def print_table(summary: dict[str, Any]) -> None:
    lines = [("rows", summary["rows"]), ("built", summary["built"]), ("rejected", summary["rejected"])]
    if "users_excluded" in summary:
        lines.insert(0, ("users left out (--exclude-users)", summary["users_excluded"]))
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


EXAMPLE = (
    "example:\n  hllm-creator build-cot --data ../shared/data/amazon_office_products "
    "--format amazon2018 --teacher offline --out runs/cot --limit 200"
)


def parse_config(argv: list[str] | None = None) -> CoTConfig:
    """``CoTConfig`` from defaults, ``--config`` and the flags (``creator.config.parse``)."""
    (cfg,) = parse([CoTConfig], argv, __doc__.split("\n\n")[0], EXAMPLE)
    return cfg


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

    return HFTeacher(HFConfig(model=cfg.teacher_model, batch_size=cfg.hf_batch_size, prompt_style=cfg.hf_prompt))


def exclude_users(catalog: Any, sources: list[str]) -> int:
    """Drop from ``catalog`` every user of the catalogs in ``sources``; returns how many were dropped."""
    ids: set[str] = set()
    for source in sources:
        ids |= set(load_catalog(source).users)
    before = len(catalog.users)
    catalog.users = {k: u for k, u in catalog.users.items() if k not in ids}
    if sources:
        logger.info("left out %d of %d users (they are in %s)", before - len(catalog.users), before,
                    ", ".join(sources))
    return before - len(catalog.users)


def run(cfg: CoTConfig) -> dict[str, Any]:
    """Build the CoT dataset in ``cfg.out``; returns the summary (also in summary.json)."""
    for name in ("data", "out"):
        if not getattr(cfg, name):
            raise ConfigError(f"--{name} is required (or set it in --config); see hllm-creator build-cot --help")
    catalog = load_catalog(cfg.data, cfg.format).require_ads()
    excluded = exclude_users(catalog, cfg.exclude_users)
    encoder = None
    if cfg.teacher == "offline" or cfg.scorer == "minilm":
        from creator.modeling.item_encoder import SentenceItemEncoder

        encoder = SentenceItemEncoder(cache_dir=cfg.embed_cache or Path(cfg.out) / "embeddings")
    brands = sorted(set(known_brands_from_ads(catalog.ads.values())) | set(cfg.known_brands))
    teacher = make_teacher(cfg, brands, encoder)
    builder = CoTBuilder(cfg, catalog, teacher, scorer=load_scorer(cfg.scorer, encoder))
    summary = asyncio.run(builder.run())
    if cfg.exclude_users:
        summary["users_excluded"] = excluded
    builder.write(Path(cfg.out), summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(argv)
    summary = run(cfg)
    print_table(summary)
    print(
        f"wrote {cfg.out}/cot.parquet ({summary['built']} rows), rejected.parquet, pairs.parquet, "
        "summary.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
