"""HLLM-Creator training parquet, in and out, so users of the original code can move over.

Columns: ``user_profile`` (JSON text), ``original_title``, ``original_description``, ``prompt1``,
``prompt2``, ``response`` (the personalized title), ``title_list`` and ``item_id_list`` (the user's
history, at most 50). The format has no ad or user id: we derive stable ones from content
(``uid``/``item_id`` columns are used when present).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from creator.io.catalog import Catalog, build_ad
from creator.io.records import iter_parquet, write_records
from creator.records.errors import DataError, Problems
from creator.records.types import HistoryItem, User

HLLM_COLUMNS = ("user_profile", "original_title", "original_description", "prompt1", "prompt2", "response",
                "title_list", "item_id_list")
REQUIRED = ("original_title", "title_list")


def content_id(prefix: str, *parts: Any) -> str:
    digest = hashlib.sha1(json.dumps(parts, ensure_ascii=False, default=str).encode()).hexdigest()[:12]
    return f"{prefix}{digest}"


def _profile(text: Any) -> dict[str, Any] | None:
    if text in (None, ""):
        return None
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else {"User Profile Description": str(value)}
    except (json.JSONDecodeError, TypeError):
        return {"User Profile Description": str(text)}


def load_hllm_parquet(path: str | Path, problems: Problems) -> Catalog:
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    catalog = Catalog(problems=problems)
    for file in files:
        for row_no, row in iter_parquet(file, problems):
            try:
                for col in REQUIRED:
                    if row.get(col) in (None, ""):
                        raise DataError(f"missing {col}", field=col, expected=f"columns {list(HLLM_COLUMNS)}",
                                        got=f"columns {sorted(row)[:10]}", fix=f"fill {col}")
                titles = row["title_list"]
                ids = row.get("item_id_list") or [content_id("i", t) for t in titles]
                if not isinstance(titles, list) or len(ids) != len(titles):
                    raise DataError("title_list and item_id_list must be lists of equal length", field="title_list",
                                    expected="two lists of equal length", got=f"{type(titles).__name__}",
                                    fix="write one id per history title")
                ad_id = str(row.get("item_id") or content_id("a", row["original_title"]))
                if ad_id not in catalog.ads:
                    catalog.ads[ad_id] = build_ad(ad_id, row["original_title"], [row.get("original_description") or ""],
                                                  stats=catalog.cleaning)
                user_id = str(row.get("uid") or row.get("user_id") or content_id("u", [str(i) for i in ids]))
                if user_id not in catalog.users:
                    catalog.users[user_id] = User(
                        user_id=user_id,
                        history=[HistoryItem(item_id=str(i), title=str(t)) for i, t in zip(ids, titles, strict=True)],
                        profile=_profile(row.get("user_profile")),
                    )
            except DataError as err:
                problems.add(err.located(str(file), row_no), {k: str(v)[:200] for k, v in row.items()})
                continue
            if row.get("response"):
                catalog.references.append({"user_id": user_id, "ad_id": ad_id, "title": str(row["response"])})
    return catalog


def write_hllm_parquet(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rows with (at least) the HLLM-Creator columns; extra columns (CoT fields, verdicts) are kept.

    ``user_profile`` may be given as a dict: it is stored as JSON text, as the original code expects.
    """
    out = []
    for i, row in enumerate(rows, start=1):
        missing = [c for c in HLLM_COLUMNS if c not in row]
        if missing:
            raise DataError("row lacks HLLM-Creator columns", line=i, field=", ".join(missing),
                            expected=f"columns {list(HLLM_COLUMNS)}", got=f"columns {sorted(row)[:10]}",
                            fix="build rows with data_pipelines' CoT builder or add the columns")
        row = dict(row)
        if isinstance(row["user_profile"], dict):
            row["user_profile"] = json.dumps(row["user_profile"], ensure_ascii=False)
        row["title_list"] = [str(t) for t in row["title_list"]][-50:]
        row["item_id_list"] = [str(t) for t in row["item_id_list"]][-50:]
        out.append(row)
    return write_records(out, path, "parquet")
