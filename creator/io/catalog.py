"""A loaded catalog (ads, users, interaction and impression logs) and the one entry point that loads it.

    >>> from creator.io import load_catalog
    >>> cat = load_catalog("examples/office_products_sample", "amazon2018")   # doctest: +SKIP
    >>> len(cat.ads), len(cat.users)                                           # doctest: +SKIP
    (300, 1000)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creator.errors import DataError, Problems
from creator.facts import ad_facts
from creator.text import CleaningStats, clean_html, looks_like_instructions, selling_points
from creator.types import Ad, HistoryItem, Impression, Interaction, User

logger = logging.getLogger(__name__)

FORMATS = ("amazon2018", "mind", "hllm", "jsonl", "csv", "parquet")
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


def detect_format(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        if (p / "items.json").exists():
            return "amazon2018"
        if (p / "news.tsv").exists():
            return "mind"
        for suffix, fmt in ((".parquet", "parquet"), (".jsonl", "jsonl"), (".csv", "csv")):
            if any(p.glob(f"*{suffix}")):
                return fmt
    elif p.is_file():  # by its bytes, not its name
        from creator.io.records import read_format

        kind = read_format(p)
        if kind != "parquet":
            return kind
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(p).names
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError("cannot read Parquet file (it starts with the PAR1 magic bytes)", file=str(path),
                            expected="a complete Parquet file", got=f"{type(exc).__name__}: {str(exc)[:120]}",
                            fix="check the file was fully written") from None
        return "hllm" if "prompt1" in names and "original_title" in names else "parquet"
    raise DataError("cannot tell the data format", file=str(path), expected=f"one of {', '.join(FORMATS)}",
                    got="no recognisable files", fix="pass --format")


def load_catalog(path: str | Path, fmt: str = "auto", *, on_error: str = "fail",
                 max_points: int = 8, **kwargs: Any) -> Catalog:
    """Load any supported format into a ``Catalog``. ``on_error='skip'`` keeps going and records rejects."""
    path = Path(path)
    if not path.exists():
        raise DataError("path does not exist", file=str(path), expected="a file or folder",
                        got="nothing there", fix="check the path")
    fmt = detect_format(path) if fmt in ("auto", None) else fmt
    problems = Problems(on_error)
    if fmt == "amazon2018":
        from creator.io.amazon import load_amazon2018

        cat = load_amazon2018(path, problems, max_points=max_points, **kwargs)
    elif fmt == "mind":
        from creator.io.mind import load_mind

        cat = load_mind(path, problems, max_points=max_points, **kwargs)
    elif fmt == "hllm":
        from creator.io.hllm import load_hllm_parquet

        cat = load_hllm_parquet(path, problems, **kwargs)
    elif fmt in ("jsonl", "csv", "parquet"):
        cat = load_records_dir(path, fmt, problems, max_points=max_points)
    else:
        raise DataError(f"unknown format {fmt!r}", expected=", ".join(FORMATS), got=fmt,
                        fix="pass one of the listed formats")
    cat.source, cat.format = str(path), fmt
    if not (cat.ads or cat.users or cat.impressions or cat.interactions):
        raise _empty_error(cat, str(path), "records (ads, users or impressions)")
    logger.info("loaded %s (%s): %d ads, %d users", path, fmt, len(cat.ads), len(cat.users))
    return cat


def load_records_dir(path: Path, fmt: str, problems: Problems, max_points: int = 8) -> Catalog:
    """Our own record files: ``ads.*``, ``users.*`` and optional ``impressions.*`` in a folder, or one file.

    Ads without selling points get them derived from their description; ads without facts get
    them extracted, so a minimal file (``ad_id``, ``title``, ``description``) is enough.
    """
    from creator.io.records import read_records

    suffix = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}[fmt]
    files: dict[str, Path] = {}
    if path.is_dir():
        for kind in ("ads", "users", "impressions", "interactions"):
            if (path / f"{kind}{suffix}").exists():
                files[kind] = path / f"{kind}{suffix}"
        if not files:
            raise DataError("folder has no record files", file=str(path),
                            expected=f"ads{suffix}, users{suffix} and/or impressions{suffix}",
                            got=", ".join(sorted(x.name for x in path.iterdir())[:8]) or "an empty folder",
                            fix="name the files ads/users/impressions with the right suffix")
    else:
        files[_guess_kind(path, fmt)] = path
    cat = Catalog(problems=problems)
    for kind, file in files.items():
        if kind == "ads":
            for ad in read_records(file, Ad, fmt=fmt, problems=problems):
                if not ad.selling_points and ad.description:
                    ad.selling_points = selling_points([ad.description], title=ad.title, max_points=max_points,
                                                       stats=cat.cleaning)
                if not ad.facts:
                    ad.facts = ad_facts(ad)
                cat.cleaning.ads += 1
                check_instruction_like(cat, f"{file}: ad {ad.ad_id}", ad.title)
                cat.ads[ad.ad_id] = ad
            if not cat.ads:  # an ads file with no usable ad is never "0 ads, fine"
                raise _empty_error(cat, str(file), "ads (ad_id, title, description)")
        elif kind == "users":
            for user in read_records(file, User, fmt=fmt, problems=problems):
                cat.users[user.user_id] = user
        elif kind == "impressions":
            cat.impressions.extend(read_records(file, Impression, fmt=fmt, problems=problems, id_field=""))
        else:
            cat.interactions.extend(read_records(file, Interaction, fmt=fmt, problems=problems, id_field=""))
    if cat.ads:
        # History entries carry their own titles, so items outside the ad set are not missing data;
        # an impression of an unknown ad is (its text is needed to learn from it).
        for imp in cat.impressions:
            if imp.ad_id not in cat.ads:
                cat.note_missing("impressions", imp.ad_id)
    if not cat.interactions:
        cat.interactions = interactions_from_histories(cat.users.values())
    return cat


def _guess_kind(path: Path, fmt: str) -> str:
    from creator.io.records import iter_rows

    for _, row in iter_rows(path, Problems("skip"), fmt):
        keys = set(row)
        if "history" in keys or ("user_id" in keys and "ad_id" not in keys):
            return "users"
        if "clicked" in keys:
            return "impressions"
        if "ad_id" in keys and "title" in keys:
            return "ads"
        break
    stem = path.stem.lower()
    for kind in ("ads", "users", "impressions", "interactions"):
        if kind in stem:
            return kind
    raise DataError("cannot tell whether the file holds ads, users or impressions", file=str(path),
                    expected="ad_id+title (ads), user_id+history (users) or clicked (impressions) columns",
                    got="none of these", fix="name the file ads.*, users.* or impressions.*")


def interactions_from_histories(users: Any) -> list[Interaction]:
    return [Interaction(user_id=u.user_id, ad_id=h.item_id, timestamp=h.timestamp, position=i)
            for u in users for i, h in enumerate(u.history)]


def history_item(item_id: str, title: str, catalog: Catalog, timestamp: float | None = None) -> HistoryItem:
    """A history entry titled from the catalog when known, else from the log's own title."""
    ad = catalog.ads.get(item_id)
    return HistoryItem(item_id=item_id, title=ad.title if ad else clean_html(title), timestamp=timestamp)
