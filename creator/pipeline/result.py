"""What a catalog run produces: its counts (``RunSummary``, written as ``summary.json``), its creatives and
user segments (``CatalogResult``), catalog coverage, and the files ``write_outputs`` writes.

``creator.pipeline.catalog.generate_for_catalog`` fills these; ``app/generate.py`` writes and prints them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from creator.pipeline.shards import ShardRow
from creator.records.types import Ad, Creative
from creator.segments.matching import segments_per_ad


@dataclass
class RunSummary:
    """Counts and seconds per stage, printed by the CLI and written as ``summary.json``."""

    users: int = 0
    cold_start_users: int = 0
    ads: int = 0
    ads_without_selling_points: int = 0
    segments: int = 0
    empty_segments: int = 0
    pairs_considered: int = 0
    pairs_pruned: int = 0
    pairs_generated: int = 0
    generator_requests: int = 0
    candidates: int = 0
    candidates_rejected: int = 0
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    personalized: int = 0
    fallbacks: int = 0
    # under a platform channel: kept pairs served a shortened title / nothing (no compliant title), and
    # pruned pairs whose original title was shortened / withheld
    shortened: int = 0
    withheld: int = 0
    pruned_shortened: int = 0
    pruned_withheld: int = 0
    shards: int = 0
    shards_resumed: int = 0
    # catalog coverage: ads with >= 1 kept pair / >= 1 personalized title (all ads, and those with selling points)
    max_calls: int | None = None
    ads_generated_for: int = 0
    ads_personalized: int = 0
    ads_personalized_share: float = 0.0
    ads_with_selling_points_personalized_share: float = 0.0
    segments_per_ad: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CatalogResult:
    """One creative per (segment, ad) for every non-empty segment, and every user's segment."""

    creatives: list[Creative]
    user_segments: dict[str, int]
    summary: RunSummary
    scores: np.ndarray  # (K, M) match probabilities
    keep: np.ndarray  # (K, M) kept pairs
    ad_ids: list[str]
    # (segment, ad_id) -> the other candidates of that kept pair that passed the guard, in sampling order
    # (more headlines for an upload: ``creator.io.google_ads``)
    alternates: dict[tuple[int, str], list[str]] = field(default_factory=dict)

    def for_user(self, user_id: str) -> list[Creative]:
        """The creatives user ``user_id`` is served: its segment's, one per ad."""
        seg = self.user_segments[user_id]
        return [c for c in self.creatives if c.segment_id == seg]

    def user_rows(self) -> Iterator[dict[str, Any]]:
        """Per-user rows (users x ads); large, written only on request."""
        by_segment: dict[int, list[Creative]] = {}
        for c in self.creatives:
            by_segment.setdefault(c.segment_id, []).append(c)  # type: ignore[arg-type]
        for user_id, seg in self.user_segments.items():
            for c in by_segment.get(seg, []):
                yield {"user_id": user_id, "segment_id": seg, "ad_id": c.ad_id, "title": c.title,
                       "source": c.source}


def count_rows(summary: RunSummary, rows: list[ShardRow], fallback: dict[str, tuple[str, str]]) -> None:
    """Candidates, guard rejections per rule and what each kept pair served (``fallback``: the channel's
    fallback per ad, empty for ``generic``)."""
    for r in rows:
        summary.candidates += len(r.candidates)
        for rules in r.failed_rules:
            summary.candidates_rejected += bool(rules)
            for rule in rules:
                summary.rejected_by_rule[rule] = summary.rejected_by_rule.get(rule, 0) + 1
        summary.personalized += r.source == "personalized"
        source = r.source if r.source != "fallback" else fallback.get(r.ad_id, ("", "fallback"))[1]
        summary.fallbacks += source in ("fallback", "original")
        summary.shortened += source == "shortened"
        summary.withheld += source == "withheld"
    summary.pairs_generated = summary.generator_requests = len(rows)
    summary.rejected_by_rule = dict(sorted(summary.rejected_by_rule.items()))


def record_coverage(summary: RunSummary, ads: list[Ad], rows: list[ShardRow], keep: np.ndarray,
                    max_calls: int | None) -> None:
    """Which ads got a personalized title for at least one segment, and for how many segments each."""
    col = {a.ad_id: m for m, a in enumerate(ads)}
    personalized = np.zeros(keep.shape, dtype=bool)
    for r in (r for r in rows if r.source == "personalized"):
        personalized[int(r.segment_id), col[r.ad_id]] = True
    per_ad, with_points = personalized.any(axis=0), np.array([bool(a.selling_points) for a in ads])
    summary.max_calls, summary.ads_generated_for = max_calls, int(keep.any(axis=0).sum())
    summary.ads_personalized, summary.ads_personalized_share = int(per_ad.sum()), round(float(per_ad.mean()), 4)
    summary.ads_with_selling_points_personalized_share = round(float(per_ad[with_points].mean()), 4) \
        if with_points.any() else 0.0
    summary.segments_per_ad = segments_per_ad(personalized)


def write_outputs(result: CatalogResult, out_dir: str | Path, fmt: str = "parquet", *, per_user: bool = False,
                  summary_extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """``creatives`` (segment x ad), ``segments`` (user -> segment), ``summary.json`` (the run's counts, then
    ``summary_extra``: what the caller adds, e.g. input problems), and on request ``user_creatives`` (user x ad)."""
    from creator.io.records import write_records

    out_dir = Path(out_dir)
    suffix = {"parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv"}[fmt]
    segments = ({"user_id": u, "segment_id": s} for u, s in result.user_segments.items())
    paths = {"creatives": write_records(result.creatives, out_dir / f"creatives{suffix}"),
             "segments": write_records(segments, out_dir / f"segments{suffix}")}
    if per_user:
        paths["user_creatives"] = write_records(result.user_rows(), out_dir / f"user_creatives{suffix}")
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps({**result.summary.to_dict(), **(summary_extra or {})}, indent=1))
    paths["summary"] = summary
    return paths
