"""Amazon Review Data (2018) as preprocessed by MiniOneRec: ``items.json`` + CSV splits.

``items.json`` maps item id to ``{title, description, brand, categories}`` where ``description``
is a *stringified Python list* of paragraphs. Each CSV row is a user's history and the next item
they took (columns ``user_id, history_item_title, item_title, history_item_id, item_id, ...``);
list columns are Python literals, parsed with ``ast.literal_eval``. Rows of one user are sliding
windows over one sequence, so a user's full history is their longest history plus its next item.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from creator.io.catalog import (
    Catalog,
    build_ad,
    check_instruction_like,
    history_item,
    interactions_from_histories,
)
from creator.io.records import MAX_FIELD_CHARS, cap_text, iter_csv
from creator.records.errors import DataError, Problems
from creator.records.text import parse_paragraph_list, repair_paragraph_list
from creator.records.types import User

SPLITS = ("train.csv", "valid.csv", "test.csv")
REQUIRED_COLUMNS = ("user_id", "history_item_title", "item_title", "history_item_id", "item_id")


def _literal_list(value: Any, field: str) -> list[Any]:
    if isinstance(value, list):
        return value
    try:
        out = ast.literal_eval(value) if isinstance(value, str) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        out = None
    if not isinstance(out, list):
        raise DataError("list column is not a Python-literal list", field=field,
                        expected="a literal list such as ['a', 'b'] or [1, 2]", got=f"{str(value)[:60]!r}",
                        fix="write the column as a Python list literal")
    return out


def load_items(path: Path, catalog: Catalog, max_points: int = 8,
               max_field_chars: int = MAX_FIELD_CHARS) -> None:
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError("items file is not valid UTF-8", file=str(path), expected="UTF-8 JSON",
                        got=f"byte at offset {exc.start}", fix="re-encode the file as UTF-8") from None
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg})", file=str(path), line=exc.lineno,
                        expected="one JSON object {item_id: {title, description, brand, categories}}",
                        got=f"column {exc.colno}", fix="check the file was written completely") from None
    if not isinstance(items, dict):
        raise DataError("items file must be a JSON object keyed by item id", file=str(path),
                        expected="{item_id: {...}}", got=type(items).__name__,
                        fix="use the MiniOneRec items.json layout")
    for item_id, item in items.items():
        where = f"item {item_id}"
        try:
            if not isinstance(item, dict):
                raise DataError("item must be an object", field=item_id, expected="{title, description, ...}",
                                got=type(item).__name__, fix="write the item as an object")
            for key, value in item.items():
                if key == "description" and isinstance(value, str) and len(value) > max_field_chars:
                    item = {**item, key: cap_text(value, max_field_chars)}
                    catalog.problems.note_capped(str(path), None, f"{where}: {key}", len(value),
                                                 len(item[key]))
                elif isinstance(value, str) and len(value) > max_field_chars:
                    raise DataError(f"field is {len(value):,} characters long", field=key,
                                    expected=f"at most {max_field_chars:,} characters", got=f"{len(value):,}",
                                    fix="shorten the field")
            title = item.get("title")
            if not isinstance(title, str) or not title.strip():
                raise DataError("empty or missing title", field="title", expected="a non-empty string",
                                got=repr(title)[:60], fix="give the item a title or remove it")
            try:
                paragraphs = parse_paragraph_list(item.get("description") or "", field_name="description")
            except DataError:
                # Free text inside a mangled list literal (mixed quotes): keep the text, count the repair.
                paragraphs = repair_paragraph_list(item.get("description") or "")
                catalog.cleaning.repaired_descriptions += 1
                catalog.warnings.append(f"{path}: {where}: description is not a valid list literal; "
                                        "its text was split on quote-comma-quote instead")
            categories = item.get("categories") or ""
            if isinstance(categories, list):
                categories = " > ".join(str(c) for c in categories)
            ad = build_ad(str(item_id), title, paragraphs, brand=str(item.get("brand") or ""),
                          category=str(categories), stats=catalog.cleaning, max_points=max_points)
        except DataError as err:
            err.message = f"{where}: {err.message}"
            catalog.problems.add(err.located(str(path)), {"item_id": item_id, "item": item})
            continue
        check_instruction_like(catalog, f"{path}: {where}", ad.title)
        catalog.ads[ad.ad_id] = ad


def load_amazon2018(path: str | Path, problems: Problems, *, max_points: int = 8,
                    splits: tuple[str, ...] = SPLITS) -> Catalog:
    path = Path(path)
    catalog = Catalog(problems=problems)
    items = path / "items.json"
    if not items.exists():
        raise DataError("amazon2018 folder has no items.json", file=str(path), expected="items.json + CSV splits",
                        got=", ".join(sorted(p.name for p in path.iterdir())[:8]), fix="point at the dataset folder")
    load_items(items, catalog, max_points=max_points)
    csvs = [path / s for s in splits if (path / s).exists()]
    if not csvs:
        catalog.warnings.append(f"{path}: no {', '.join(splits)} found: ads only, no users")
    sequences: dict[str, list[tuple[str, str]]] = {}
    for csv_path in csvs:
        for line_no, row in iter_csv(csv_path, problems, REQUIRED_COLUMNS, decode_json=False):
            try:
                user_id = (row.get("user_id") or "").strip()
                if not user_id:
                    raise DataError("empty user_id", field="user_id", expected="a user id", got="''",
                                    fix="fill user_id")
                ids = [str(x) for x in _literal_list(row["history_item_id"], "history_item_id")]
                titles = [str(x) for x in _literal_list(row["history_item_title"], "history_item_title")]
                if len(ids) != len(titles):
                    raise DataError("history ids and titles differ in length", field="history_item_id",
                                    expected=f"{len(titles)} ids (one per title)", got=f"{len(ids)} ids",
                                    fix="write one id per history title")
                target = str(row.get("item_id") or "").strip()
                if not target:
                    raise DataError("empty item_id", field="item_id", expected="the next item's id", got="''",
                                    fix="fill item_id")
            except DataError as err:
                problems.add(err.located(str(csv_path), line_no), row)
                continue
            if not ids:
                catalog.warnings.append(f"{csv_path}:{line_no}: user {user_id} has an empty history")
            seq = list(zip(ids, titles, strict=True)) + [(target, row.get("item_title") or "")]
            known = sequences.get(user_id)
            if known is None or len(seq) > len(known):
                if known is not None and [i for i, _ in seq[: len(known)]] != [i for i, _ in known]:
                    catalog.warnings.append(f"{csv_path}:{line_no}: user {user_id}'s history is not an extension "
                                            "of an earlier row; the longer one is kept")
                sequences[user_id] = seq
    for user_id, seq in sequences.items():
        history = []
        for item_id, title in seq:
            if item_id not in catalog.ads:
                catalog.note_missing("history", item_id)
            history.append(history_item(item_id, title, catalog))
        catalog.users[user_id] = User(user_id=user_id, history=history)
    catalog.interactions = interactions_from_histories(catalog.users.values())
    return catalog
