"""A loaded catalog (ads, users, interaction and impression logs) and the pieces every format loader shares.

``creator.io.load.load_catalog`` picks the loader; the loaders build their ``Catalog`` with ``build_ad``.

    >>> ad = build_ad("a1", "Gel Pens, 12 Colors", ["Smooth ink that dries fast.", "Pack of 12 pens."], brand="Pilot")
    >>> ad.selling_points
    ['Smooth ink that dries fast', 'Pack of 12 pens']
    >>> [(f.kind, f.text) for f in ad.facts]
    [('quantity', '12 Colors'), ('count', 'Pack of 12'), ('brand', 'Pilot')]
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from creator.records.errors import DataError, Problems
from creator.records.facts import ad_facts
from creator.records.text import CleaningStats, clean_html, looks_like_instructions, selling_points
from creator.records.types import Ad, HistoryItem, Impression, Interaction, User

logger = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 2000


@dataclass
class Catalog:
    """Everything a loader read, plus what it could not use (problems, missing ids, warnings)."""

    ads: dict[str, Ad] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    impressions: list[Impression] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    format: str = ""
    problems: Problems = field(default_factory=Problems)
    missing_ids: Counter = field(default_factory=Counter)
    missing_examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cleaning: CleaningStats = field(default_factory=CleaningStats)

    def note_missing(self, where: str, item_id: str) -> None:
        """Count an id referenced in ``where`` (e.g. 'history') that has no record."""
        self.missing_ids[where] += 1
        examples = self.missing_examples.setdefault(where, [])
        if len(examples) < 5 and item_id not in examples:
            examples.append(item_id)

    def next_item_rows(self, min_history: int = 1) -> Iterator[tuple[User, str]]:
        """Every (user with history up to t, item at t) for t >= ``min_history``: the training rows."""
        for user in self.users.values():
            for t in range(min_history, len(user.history)):
                yield User(user.user_id, user.history[:t], user.profile), user.history[t].item_id

    def require_ads(self) -> Catalog:
        """This catalog, or a ``DataError`` when it holds no ads (for every verb that works on ads)."""
        if not self.ads:
            raise _empty_error(self, self.source, "ads (ad_id, title, description)")
        return self

    def summary(self) -> dict[str, Any]:
        lengths = sorted(len(u.history) for u in self.users.values())
        clicks = sum(1 for i in self.impressions if i.clicked)
        stats: dict[str, Any] = {
            "source": self.source,
            "format": self.format,
            "ads": len(self.ads),
            "users": len(self.users),
            "interactions": len(self.interactions),
            "impressions": len(self.impressions),
            "clicks": clicks,
            "ads_with_selling_points": sum(1 for a in self.ads.values() if a.selling_points),
            "ads_with_facts": sum(1 for a in self.ads.values() if a.facts),
            "users_with_empty_history": sum(1 for n in lengths if n == 0),
            "history_length": _quantiles(lengths),
            "missing_ids": dict(self.missing_ids),
            "missing_id_examples": self.missing_examples,
            "rejected_rows": len(self.problems),
            "capped_fields": len(self.problems.capped),
            "warnings": len(self.warnings),
            "cleaning": self.cleaning.to_dict(),
        }
        if self.references:
            stats["references"] = len(self.references)
        return stats


def _empty_error(cat: Catalog, source: str, what: str) -> DataError:
    rejected = len(cat.problems)
    got = f"none ({rejected} rows rejected; the first: {cat.problems.errors[0]})" if rejected else "none"
    return DataError(f"no {what.split(' ')[0]} could be read", file=source, expected=what, got=got,
                     fix="fix the rejected rows" if rejected else "point at the file or folder that holds them")


def _quantiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "p90": 0, "max": 0}
    n = len(values)
    return {"min": values[0], "median": values[n // 2], "mean": round(sum(values) / n, 2),
            "p90": values[min(n - 1, int(0.9 * n))], "max": values[-1]}


def build_ad(ad_id: str, title: str, paragraphs: list[str], *, brand: str = "", category: str = "",
             stats: CleaningStats | None = None, max_points: int = 8) -> Ad:
    """An ``Ad`` from raw text: cleaned description, selling points and grounded facts."""
    stats = stats if stats is not None else CleaningStats()
    title = clean_html(title)
    points = selling_points(paragraphs, title=title, max_points=max_points, stats=stats)
    description = " ".join(p for p in (clean_html(x) for x in paragraphs) if p)
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[:MAX_DESCRIPTION_CHARS].rsplit(" ", 1)[0] + " ..."
    stats.ads += 1
    if not points:
        stats.ads_without_points += 1
    ad = Ad(ad_id=ad_id, title=title, description=description, brand=clean_html(brand).strip(),
            category=category, selling_points=points)
    ad.facts = ad_facts(ad)
    return ad


def check_instruction_like(catalog: Catalog, where: str, text: str) -> None:
    if looks_like_instructions(text):
        catalog.warnings.append(f"{where}: text looks like instructions to a model ({text[:60]!r}); "
                                "it is kept as data and quoted, never followed")


def interactions_from_histories(users: Any) -> list[Interaction]:
    return [Interaction(user_id=u.user_id, ad_id=h.item_id, timestamp=h.timestamp, position=i)
            for u in users for i, h in enumerate(u.history)]


def history_item(item_id: str, title: str, catalog: Catalog, timestamp: float | None = None) -> HistoryItem:
    """A history entry titled from the catalog when known, else from the log's own title."""
    ad = catalog.ads.get(item_id)
    return HistoryItem(item_id=item_id, title=ad.title if ad else clean_html(title), timestamp=timestamp)
