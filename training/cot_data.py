"""Read the CoT dataset and preference pairs (schemas in docs/cot.md) into ads, users and training rows.

CoT parquet: HLLM-Creator columns + ``user_id, ad_id, split, profile, ...``; a folder means every
``*.parquet`` in it except ``rejected.parquet`` and ``pairs.parquet``. Pairs: ``pairs.parquet`` with
``user_id, ad_id, split, original_title, chosen, rejected, ...``.
Ads come from a catalog when one is given (the same ``Ad`` objects inference will see), else they are
rebuilt from ``original_title`` + ``original_description`` with the loader's own ``build_ad``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creator.io.catalog import build_ad
from creator.records.errors import DataError
from creator.records.types import Ad, HistoryItem, User

logger = logging.getLogger(__name__)

COT_REQUIRED = ("user_id", "ad_id", "split", "response", "original_title", "title_list", "item_id_list")
PAIR_REQUIRED = ("user_id", "ad_id", "split", "original_title", "chosen", "rejected")
SKIP_FILES = ("rejected.parquet", "pairs.parquet")


@dataclass
class TrainingData:
    rows: list[dict[str, Any]]
    ads: dict[str, Ad] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


def _files(path: Path, name: str | None) -> list[Path]:
    if path.is_dir():
        if name and (path / name).exists():
            return [path / name]
        files = sorted(p for p in path.glob("*.parquet") if p.name not in SKIP_FILES)
    else:
        files = [path]
    if not files or not all(f.exists() for f in files):
        raise DataError(
            "no parquet files found",
            file=str(path),
            expected="a parquet file or a folder of them",
            got="nothing",
            fix="pass the --out folder of the CoT pipeline",
        )
    return files


def read_rows(
    path: str | Path, required: tuple[str, ...], *, name: str | None = None, split: str | None = None
) -> list[dict[str, Any]]:
    """Rows of the parquet file(s) at ``path`` (optionally one ``split``); required columns checked."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for file in _files(Path(path), name):
        table = pq.read_table(file)
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise DataError(
                "parquet lacks required columns",
                file=str(file),
                field=", ".join(missing),
                expected=f"columns {list(required)}",
                got=f"columns {table.column_names[:12]}",
                fix="write it with the CoT pipeline (schema in docs/cot.md)",
            )
        for i, row in enumerate(table.to_pylist(), start=1):
            if split is not None and row.get("split") != split:
                continue
            for col in ("user_id", "ad_id"):
                if row.get(col) in (None, ""):
                    raise DataError(
                        f"empty {col}",
                        file=str(file),
                        line=i,
                        field=col,
                        expected="an id",
                        got=repr(row.get(col)),
                        fix="drop or repair the row",
                    )
                row[col] = str(row[col])
            row["_source"] = f"{file}:{i}"
            rows.append(row)
    return rows


def profile_text(row: dict[str, Any]) -> str | None:
    """The teacher's user profile as compact JSON text (``profile`` column, else ``user_profile``)."""
    value = row.get("profile") or row.get("user_profile")
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def ad_from_row(row: dict[str, Any]) -> Ad:
    return build_ad(row["ad_id"], row["original_title"], [row.get("original_description") or ""])


def user_from_row(row: dict[str, Any]) -> User:
    titles, ids = row.get("title_list") or [], row.get("item_id_list") or []
    if len(titles) != len(ids):
        raise DataError(
            "title_list and item_id_list differ in length",
            file=row.get("_source"),
            field="title_list",
            expected="equal lengths",
            got=f"{len(titles)} vs {len(ids)}",
            fix="write one item id per history title",
        )
    return User(row["user_id"], [HistoryItem(str(i), str(t)) for i, t in zip(ids, titles, strict=True)])


def load_training_data(
    path: str | Path,
    *,
    kind: str = "cot",
    split: str | None = "train",
    catalog: Any = None,
    cot_for_lookup: str | Path | None = None,
    max_rows: int | None = None,
) -> TrainingData:
    """CoT rows (``kind="cot"``) or preference pairs (``kind="pairs"``) with their ads and users.

    For pairs, ads and users are looked up in ``catalog`` or in the CoT rows of ``cot_for_lookup``
    (pairs carry no description or history); a pair whose ad or user is found nowhere is an error."""
    required = COT_REQUIRED if kind == "cot" else PAIR_REQUIRED
    rows = read_rows(path, required, name="pairs.parquet" if kind == "pairs" else None, split=split)
    if max_rows is not None:
        rows = rows[:max_rows]
    if not rows:
        raise DataError(
            f"no {kind} rows for split {split!r}",
            file=str(path),
            field="split",
            expected="at least one row",
            got="none",
            fix="check the split names (train|validation|test)",
        )
    lookup = rows if kind == "cot" else (read_rows(cot_for_lookup, COT_REQUIRED) if cot_for_lookup else [])
    data = TrainingData(rows=rows)
    for r in lookup:
        if r["ad_id"] not in data.ads:
            data.ads[r["ad_id"]] = (
                catalog.ads[r["ad_id"]] if catalog and r["ad_id"] in catalog.ads else ad_from_row(r)
            )
        if r["user_id"] not in data.users:
            data.users[r["user_id"]] = user_from_row(r)
    for r in rows:
        if catalog is not None:
            if r["ad_id"] in catalog.ads:
                data.ads[r["ad_id"]] = catalog.ads[r["ad_id"]]
            if r["user_id"] in catalog.users and r["user_id"] not in data.users:
                data.users[r["user_id"]] = catalog.users[r["user_id"]]
        if r["ad_id"] not in data.ads:
            raise DataError(
                "ad not found",
                file=r["_source"],
                field="ad_id",
                expected="an ad of the catalog or CoT data",
                got=r["ad_id"],
                fix="pass --catalog or --cot so pairs can find their ads",
            )
        if r["user_id"] not in data.users:
            raise DataError(
                "user not found",
                file=r["_source"],
                field="user_id",
                expected="a user of the catalog or CoT data",
                got=r["user_id"],
                fix="pass --catalog or --cot so pairs can find their users",
            )
    logger.info(
        "read %d %s rows (%d ads, %d users) from %s", len(rows), kind, len(data.ads), len(data.users), path
    )
    return data
