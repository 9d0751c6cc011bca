"""Systems under evaluation: creative files mapped onto (user, ad) pairs.

A system is a JSONL/CSV/Parquet file of ``Creative`` records. A record keyed by ``user_id`` serves
that user; a record keyed by ``segment_id`` serves every user of that segment, which a user ->
segment table (``user_id, segment_id`` rows) resolves. Per-user records win over segment records
for the same pair. Two different titles for the same (user, ad) are an error, never a coin toss.

All systems are compared on the pairs they share (``common_pairs``), and the report says how many
pairs each system had and how many of them were left out.

    >>> from creator.records.types import Creative
    >>> s = System.from_creatives("seg", [Creative("a1", "Pens for artists", "personalized", segment_id=0)],
    ...                           segments={"u1": 0, "u2": 0, "u3": 1})
    >>> sorted(s.titles), s.calls
    ([('u1', 'a1'), ('u2', 'a1')], 1)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from creator.io.records import iter_rows, read_records
from creator.records.errors import DataError, Problems
from creator.records.types import Creative

logger = logging.getLogger(__name__)

Pair = tuple[str, str]  # (user_id, ad_id)


@dataclass
class System:
    """One system's title per (user, ad), the creatives behind them, and its generation-call count."""

    name: str
    titles: dict[Pair, str] = field(default_factory=dict)
    creatives: dict[Pair, Creative] = field(default_factory=dict)
    variants: dict[str, list[str]] = field(default_factory=dict)  # ad_id -> one title per segment/user
    calls: float = 0
    source: str = ""

    @classmethod
    def from_creatives(
        cls,
        name: str,
        creatives: Iterable[Creative],
        *,
        segments: dict[str, int] | None = None,
        source: str = "",
    ) -> System:
        creatives = list(creatives)
        by_segment: dict[tuple[int, str], Creative] = {}
        sys_ = cls(name=name, source=source)
        users_of: dict[int, list[str]] = {}
        for user, seg in (segments or {}).items():
            users_of.setdefault(seg, []).append(user)
        for c in creatives:
            if c.user_id is not None:
                sys_._put((c.user_id, c.ad_id), c)
            elif c.segment_id is not None:
                prev = by_segment.get((c.segment_id, c.ad_id))
                if prev is not None and prev.title != c.title:
                    raise DataError(
                        f"system {name!r}: two titles for segment {c.segment_id}, ad {c.ad_id}",
                        file=source or None,
                        field="title",
                        expected="one title per (segment, ad)",
                        got=f"{prev.title!r} and {c.title!r}",
                        fix="keep one of them",
                    )
                by_segment[(c.segment_id, c.ad_id)] = c
            else:
                raise DataError(
                    f"system {name!r}: a creative has neither user_id nor segment_id",
                    file=source or None,
                    field="user_id",
                    expected="user_id or segment_id",
                    got=f"ad {c.ad_id} title {c.title!r:.40}",
                    fix="key every creative",
                )
        if by_segment and segments is None:
            raise DataError(
                f"system {name!r} is keyed by segment_id but no user -> segment table was given",
                file=source or None,
                field="segment_id",
                expected="--segments NAME=PATH",
                got=f"{len(by_segment)} segment creatives",
                fix=f"pass --segments {name}=users_segments.jsonl (rows user_id, segment_id)",
            )
        for (seg, ad_id), c in by_segment.items():
            for user in users_of.get(seg, []):
                sys_.creatives.setdefault((user, ad_id), c)  # a per-user record wins
                sys_.titles.setdefault((user, ad_id), c.title)
        # Serving units: a segment (also when per-user records carry their segment id) or a lone user.
        # One title per unit per ad feeds diversity and spread; units not copied from the original
        # count as generation calls.
        units: dict[tuple[str, object, str], Creative] = {}
        for c in creatives:
            unit = ("s", c.segment_id) if c.segment_id is not None else ("u", c.user_id)
            units.setdefault((unit[0], unit[1], c.ad_id), c)
        for (_, _, ad_id), c in sorted(units.items(), key=lambda kv: (kv[0][2], kv[0][0], str(kv[0][1]))):
            sys_.variants.setdefault(ad_id, []).append(c.title)
        sys_.calls = sum(1 for c in units.values() if c.source != "original")
        return sys_

    def _put(self, key: Pair, c: Creative) -> None:
        prev = self.titles.get(key)
        if prev is not None and prev != c.title:
            raise DataError(
                f"system {self.name!r}: two titles for user {key[0]} and ad {key[1]}",
                file=self.source or None,
                field="title",
                expected="one title per (user, ad)",
                got=f"{prev!r} and {c.title!r}",
                fix="keep one of them",
            )
        self.titles[key] = c.title
        self.creatives[key] = c


def read_segments(path: str | Path) -> dict[str, int]:
    """A user -> segment table: rows with ``user_id`` and an integer ``segment_id``."""
    out: dict[str, int] = {}
    for line, row in iter_rows(path, Problems("fail"), required=("user_id", "segment_id")):
        user, seg = row.get("user_id"), row.get("segment_id")
        try:
            seg_int = int(seg)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(
                "segment_id is not an integer",
                file=str(path),
                line=line,
                field="segment_id",
                expected="an integer segment id",
                got=repr(seg),
                fix="write segment ids as 0, 1, ...",
            ) from None
        if user in (None, ""):
            raise DataError(
                "row lacks user_id",
                file=str(path),
                line=line,
                field="user_id",
                expected="a user id",
                got=repr(user),
                fix="give every row a user_id",
            )
        if str(user) in out and out[str(user)] != seg_int:
            raise DataError(
                f"user {user} is in two segments",
                file=str(path),
                line=line,
                field="segment_id",
                expected="one segment per user",
                got=f"{out[str(user)]} and {seg_int}",
                fix="keep one row per user",
            )
        out[str(user)] = seg_int
    return out


def load_system(name: str, path: str | Path, *, segments: dict[str, int] | None = None) -> System:
    """Read a creative file (JSONL/CSV/Parquet) as a system."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"system {name!r}: file does not exist",
            file=str(path),
            expected="a creatives file",
            got="nothing there",
            fix="check the path after NAME=",
        )
    creatives = read_records(path, Creative, problems=Problems("fail"))
    if not creatives:
        raise DataError(
            f"system {name!r}: no creatives",
            file=str(path),
            expected="at least one Creative row",
            got="an empty file",
            fix="point at the generate command's output",
        )
    return System.from_creatives(name, creatives, segments=segments, source=str(path))


def check_ids(system: System, ads: Iterable[str], users: Iterable[str]) -> None:
    """Every ad and user a system names must exist in the catalog: a mismatch means the wrong files."""
    ad_set, user_set = set(ads), set(users)
    for user, ad in system.creatives:
        if ad not in ad_set:
            raise DataError(
                f"system {system.name!r} names ad {ad!r}, which is not in --ads",
                file=system.source,
                field="ad_id",
                expected="ids of the --ads catalog",
                got=repr(ad),
                fix="evaluate against the catalog the creatives were generated from",
            )
        if user not in user_set:
            raise DataError(
                f"system {system.name!r} names user {user!r}, which is not in --users",
                file=system.source,
                field="user_id",
                expected="ids of the --users catalog",
                got=repr(user),
                fix="evaluate against the users the creatives were generated for",
            )


def common_pairs(systems: list[System], wanted: Iterable[Pair] | None = None) -> tuple[list[Pair], dict]:
    """Pairs every system covers (within ``wanted`` when given), sorted; plus per-system coverage counts."""
    if not systems:
        raise ValueError("no systems to compare; pass --systems NAME=PATH at least once")
    keys = set(wanted) if wanted is not None else set(systems[0].titles)
    for s in systems:
        keys &= set(s.titles)
    pairs = sorted(keys)
    coverage = {
        s.name: {"pairs": len(s.titles), "evaluated": len(pairs), "left_out": len(s.titles) - len(pairs)}
        for s in systems
    }
    for name, c in coverage.items():
        if c["left_out"]:
            logger.warning(
                "system %s: %d of its %d pairs are not covered by every system and are left out",
                name,
                c["left_out"],
                c["pairs"],
            )
    if not pairs:
        raise DataError(
            "the systems share no (user, ad) pair",
            expected="systems generated for the same users and ads",
            got=", ".join(f"{k}: {v['pairs']} pairs" for k, v in coverage.items()),
            fix="generate every system for the same users and ads (or pass --segments)",
        )
    return pairs, coverage
