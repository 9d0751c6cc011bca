"""The one entry point that loads a catalog: the format told from the path's contents, then its loader.

    >>> import pathlib, tempfile
    >>> from creator.io import load_catalog
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "ads.jsonl").write_text('{"ad_id": "a1", "title": "Gel Pens, 12 Colors"}\\n')
    >>> cat = load_catalog(folder)
    >>> list(cat.ads), cat.ads["a1"].title
    (['a1'], 'Gel Pens, 12 Colors')

Formats: ``amazon2018`` (``items.json`` + CSV splits), ``mind`` (``news.tsv`` + ``behaviors.tsv``), ``hllm``
(HLLM-Creator's training parquet) and the project's own ``jsonl``/``csv``/``parquet`` record files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from creator.io.amazon import load_amazon2018
from creator.io.catalog import (
    Catalog,
    _empty_error,
    check_instruction_like,
    interactions_from_histories,
)
from creator.io.hllm import load_hllm_parquet
from creator.io.mind import load_mind
from creator.io.records import iter_rows, read_format, read_records
from creator.records.errors import DataError, Problems
from creator.records.facts import ad_facts
from creator.records.text import selling_points
from creator.records.types import Ad, Impression, Interaction, User

logger = logging.getLogger(__name__)

FORMATS = ("amazon2018", "mind", "hllm", "jsonl", "csv", "parquet")


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
        cat = load_amazon2018(path, problems, max_points=max_points, **kwargs)
    elif fmt == "mind":
        cat = load_mind(path, problems, max_points=max_points, **kwargs)
    elif fmt == "hllm":
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
