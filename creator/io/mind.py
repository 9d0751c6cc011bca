"""MIND (Microsoft News Dataset): ``news.tsv`` (the ads) + ``behaviors.tsv`` (histories, impressions).

``news.tsv``: news_id, category, subcategory, title, abstract, url, title_entities,
abstract_entities (tab-separated, no header). ``behaviors.tsv``: impression_id, user_id, time
(``11/12/2019 2:14:46 PM``), space-separated history ids, impressions ``N123-1 N456-0``.
Ids missing from ``news.tsv`` are counted and reported, never a crash.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from creator.io.catalog import Catalog, build_ad, check_instruction_like, interactions_from_histories
from creator.records.errors import DataError, Problems
from creator.records.types import HistoryItem, Impression, User

TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def _read_tsv(path: Path, n_cols: int, problems: Problems):
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problems.add(DataError("line is not valid UTF-8", file=str(path), line=line_no, expected="UTF-8",
                                       got=f"byte {raw[exc.start]:#04x}", fix="re-encode the file as UTF-8"), raw)
                continue
            cells = next(csv.reader([text], delimiter="\t", quoting=csv.QUOTE_NONE))
            if len(cells) < n_cols:
                hint = " (is it comma-separated?)" if "," in text and "\t" not in text else ""
                problems.add(DataError(f"row has {len(cells)} tab-separated cells{hint}", file=str(path),
                                       line=line_no, expected=f"{n_cols} tab-separated cells", got=f"{len(cells)}",
                                       fix="use the MIND TSV layout"), text)
                continue
            yield line_no, cells


def load_mind(path: str | Path, problems: Problems, *, max_points: int = 8) -> Catalog:
    path = Path(path)
    news, behaviors = path / "news.tsv", path / "behaviors.tsv"
    if not news.exists():
        raise DataError("MIND folder has no news.tsv", file=str(path), expected="news.tsv and behaviors.tsv",
                        got=", ".join(sorted(p.name for p in path.iterdir())[:8]), fix="point at the MIND folder")
    catalog = Catalog(problems=problems)
    for line_no, cells in _read_tsv(news, 5, problems):
        news_id, category, subcategory, title, abstract = cells[:5]
        try:
            if news_id in catalog.ads:
                raise DataError(f"duplicate news id {news_id!r}", field="news_id", expected="unique ids",
                                got=news_id, fix="drop the duplicate row")
            ad = build_ad(news_id, title, [abstract], category=f"{category}/{subcategory}".strip("/"),
                          stats=catalog.cleaning, max_points=max_points)
        except DataError as err:
            problems.add(err.located(str(news), line_no), cells)
            continue
        check_instruction_like(catalog, f"{news}:{line_no}", ad.title)
        catalog.ads[ad.ad_id] = ad
    if not behaviors.exists():
        catalog.warnings.append(f"{path}: no behaviors.tsv: ads only, no users")
        return catalog
    for line_no, cells in _read_tsv(behaviors, 5, problems):
        impression_id, user_id, time_text, history_text, impressions_text = cells[:5]
        try:
            ts = datetime.strptime(time_text.strip(), TIME_FORMAT).timestamp() if time_text.strip() else None
        except ValueError:
            problems.add(DataError("time is not in MIND format", file=str(behaviors), line=line_no, field="time",
                                   expected="like 11/12/2019 2:14:46 PM", got=repr(time_text[:40]),
                                   fix="write times as M/D/YYYY H:MM:SS AM|PM"), cells)
            continue
        events = []
        try:
            for token in impressions_text.split():
                news_id, sep, label = token.rpartition("-")
                if not sep or label not in ("0", "1"):
                    raise DataError("impression is not 'NEWSID-0' or 'NEWSID-1'", field="impressions",
                                    expected="space-separated NEWSID-LABEL tokens", got=repr(token[:40]),
                                    fix="label every impression 0 or 1")
                events.append((news_id, label == "1"))
        except DataError as err:
            problems.add(err.located(str(behaviors), line_no), cells)
            continue
        history_ids = history_text.split()
        history = []
        for item_id in history_ids:
            ad = catalog.ads.get(item_id)
            if ad is None:
                catalog.note_missing("history", item_id)
                continue  # no text for it: counted above, reported by `data inspect`
            history.append(HistoryItem(item_id=item_id, title=ad.title))
        known = catalog.users.get(user_id)
        if known is None or len(history) > len(known.history):
            catalog.users[user_id] = User(user_id=user_id, history=history)
        for news_id, clicked in events:
            if news_id not in catalog.ads:
                catalog.note_missing("impressions", news_id)
            catalog.impressions.append(Impression(user_id=user_id, ad_id=news_id, clicked=clicked, timestamp=ts,
                                                  impression_id=impression_id))
    catalog.interactions = interactions_from_histories(catalog.users.values())
    return catalog
