"""What ``hllm-creator eval`` scores: the catalog, the systems and the (user, ad) pairs they all cover.

``load_eval_set(cfg)`` reads the catalog(s) and every system's creatives file, keeps the pairs every system
covers (``eval.systems.common_pairs``), samples ``cfg.max_pairs`` of them with ``cfg.seed``, and lines up one
title per system for each pair, the copy-the-original system (``ORIGINAL``) first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creator.io import Catalog, load_catalog
from creator.io.records import iter_rows
from creator.records.errors import Problems
from creator.records.types import Ad, User
from eval.config import EvalConfig
from eval.systems import Pair, System, check_ids, common_pairs, load_system, read_segments

logger = logging.getLogger(__name__)
ORIGINAL = "original"


@dataclass
class EvalSet:
    """The pairs every system is scored on; ``users[i]``, ``ads[i]`` and ``titles[name][i]`` belong to ``pairs[i]``."""

    ads_catalog: Catalog
    users_catalog: Catalog
    systems: list[System]
    tables: dict[str, dict[str, int]]  # segment-table path -> user_id -> segment_id
    pairs: list[Pair]
    coverage: dict[str, Any]
    total_pairs: int  # pairs shared by every system, before sampling max_pairs
    users: list[User]
    ads: list[Ad]
    titles: dict[str, list[str]]  # system name -> one title per pair; ORIGINAL first
    calls: dict[str, float]

    @property
    def ads_by_id(self) -> dict[str, Ad]:
        return self.ads_catalog.ads

    @property
    def originals(self) -> list[str]:
        return self.titles[ORIGINAL]

    @property
    def names(self) -> list[str]:
        return list(self.titles)

    @property
    def by_name(self) -> dict[str, System]:
        return {s.name: s for s in self.systems}

    @property
    def ad_ids(self) -> list[str]:
        return sorted({a for _, a in self.pairs})

    def variants(self, name: str) -> list[list[str]]:
        """Per ad (``ad_ids``), the titles the system wrote for it (one per segment or user)."""
        if name == ORIGINAL:
            return [[self.ads_by_id[a].title] for a in self.ad_ids]
        system = self.by_name[name]
        return [system.variants.get(a, []) for a in self.ad_ids]


def load_eval_set(cfg: EvalConfig) -> EvalSet:
    """The catalog(s), the systems of ``cfg`` and the sampled pairs they share, with every system's titles."""
    ads_cat = load_catalog(cfg.ads, cfg.format).require_ads()
    users_cat = ads_cat if not cfg.users or cfg.users == cfg.ads else load_catalog(cfg.users, cfg.format)
    ads, users = ads_cat.ads, users_cat.users

    tables = {p: read_segments(p) for p in {cfg.segment_table(n) for n in cfg.systems} if p}
    systems: list[System] = []
    for name, path in cfg.systems.items():
        table = cfg.segment_table(name)
        system = load_system(name, path, segments=tables[table] if table else None)
        check_ids(system, ads, users)
        systems.append(system)
    pairs, coverage = common_pairs(systems, read_pairs(cfg.pairs) if cfg.pairs else None)
    total_pairs = len(pairs)
    if cfg.max_pairs and len(pairs) > cfg.max_pairs:
        keep = np.random.default_rng(cfg.seed).choice(len(pairs), size=cfg.max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    U: list[User] = [users[u] for u, _ in pairs]
    A: list[Ad] = [ads[a] for _, a in pairs]
    titles: dict[str, list[str]] = {ORIGINAL: [a.title for a in A]}
    by_name = {s.name: s for s in systems}
    for s in systems:
        titles[s.name] = [s.titles[p] for p in pairs]
    calls = {n: float(cfg.calls.get(n, by_name[n].calls if n in by_name else 0)) for n in titles}
    data = EvalSet(ads_cat, users_cat, systems, tables, pairs, coverage, total_pairs, U, A, titles, calls)
    logger.info(
        "evaluating %d systems on %d pairs (%d users, %d ads)",
        len(titles),
        len(pairs),
        len({u for u, _ in pairs}),
        len(data.ad_ids),
    )
    return data


def read_pairs(path: str | Path) -> list[Pair]:
    return [
        (str(r["user_id"]), str(r["ad_id"]))
        for _, r in iter_rows(path, Problems("fail"), required=("user_id", "ad_id"))
    ]


def read_references(path: str | Path | None, catalog_refs: list[dict[str, Any]]) -> dict[Pair, str]:
    """(user, ad) -> reference title from a records file (user_id, ad_id, title) or the catalog's own."""
    rows = catalog_refs
    if path:
        p = Path(path)
        if p.suffix == ".parquet" and "prompt1" in _parquet_columns(p):
            rows = load_catalog(p, "hllm").references
        else:
            rows = [r for _, r in iter_rows(p, Problems("fail"), required=("user_id", "ad_id", "title"))]
    return {(str(r["user_id"]), str(r["ad_id"])): str(r["title"]) for r in rows}


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names
