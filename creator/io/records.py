"""Generic readers and writers for record files: JSONL, CSV and Parquet, with row-level validation.

Every reader yields ``(line, dict)`` pairs and turns any problem into a ``DataError`` that names
the file, the line (1-based; for CSV the physical line of the row, header = line 1; for Parquet
the row number) and the field. Nested fields (lists, objects) are stored as JSON text in CSV.

    >>> import tempfile, pathlib
    >>> from creator.records.types import Ad
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ads.jsonl"
    >>> _ = write_records([Ad(ad_id="1", title="Pen")], p)
    >>> [a.title for a in read_records(p, Ad)]
    ['Pen']
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from creator.io.sniff import sniff_format
from creator.records.errors import DataError, Problems

T = TypeVar("T")
MAX_FIELD_CHARS = 200_000
# long free text that loses little when cut: capped at a sentence boundary, never a lost ad
CAPPED_FIELDS = frozenset({"description", "original_description"})
SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def file_format(path: str | Path, fmt: str | None = None) -> str:
    """The record format of ``path`` from ``fmt`` or its suffix; a clear error otherwise."""
    if fmt and fmt != "auto":
        if fmt not in ("jsonl", "csv", "parquet"):
            raise DataError(f"unknown record format {fmt!r}", file=str(path), expected="jsonl, csv or parquet",
                            got=fmt, fix="pass --format jsonl|csv|parquet")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError("cannot tell the file format from its name", file=str(path),
                        expected="a .jsonl, .csv or .parquet file", got=f"suffix {suffix!r}",
                        fix="rename the file or pass --format")
    return SUFFIXES[suffix]


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at the last sentence end (else the last space) before it.

    >>> cap_text("One. Two. Three.", 12)
    'One. Two.'
    """
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in re.finditer(r"[.!?\u3002](?=\s|$)", head)]
    if ends and ends[-1] >= limit // 2:
        return head[:ends[-1]].rstrip()
    # already at a word end, or one endless word: keep the head; else drop the word the cut went through
    if head[-1].isspace() or text[limit].isspace() or " " not in head[limit // 2:]:
        return head.rstrip()
    return head.rsplit(None, 1)[0].rstrip()


def _check_sizes(row: dict[str, Any], max_field_chars: int, problems: Problems | None = None,
                 where: tuple[str, int] = ("", 0)) -> None:
    """Descriptions over the limit are cut at a sentence boundary and counted; any other field is an error."""
    for key, value in row.items():
        if key in CAPPED_FIELDS and isinstance(value, str) and len(value) > max_field_chars:
            row[key] = cap_text(value, max_field_chars)
            if problems is not None:
                problems.note_capped(where[0], where[1], str(key), len(value), len(row[key]))
        elif isinstance(value, str) and len(value) > max_field_chars:
            raise DataError(
                f"field is {len(value):,} characters long",
                field=str(key),
                expected=f"at most {max_field_chars:,} characters",
                got=f"{len(value):,} characters",
                fix="shorten the field or split the record (only descriptions are cut to fit)",
            )


def iter_jsonl(path: str | Path, problems: Problems, max_field_chars: int = MAX_FIELD_CHARS
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problems.add(DataError("line is not valid UTF-8", file=str(path), line=line_no,
                                       expected="UTF-8 text",
                                       got=f"byte {raw[exc.start]:#04x} at column {exc.start + 1}",
                                       fix="re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"), raw)
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.add(DataError(f"malformed JSON ({exc.msg})", file=str(path), line=line_no,
                                       expected="one JSON object per line",
                                       got=f"{text.strip()[:60]!r} (column {exc.colno})",
                                       fix="check quotes, commas and brackets on this line"), text)
                continue
            if not isinstance(row, dict):
                problems.add(DataError("line is not a JSON object", file=str(path), line=line_no,
                                       expected="a JSON object", got=type(row).__name__,
                                       fix='write one object per line, e.g. {"ad_id": "1", "title": "..."}'), text)
                continue
            try:
                _check_sizes(row, max_field_chars, problems, (str(path), line_no))
            except DataError as err:
                problems.add(err.located(str(path), line_no), text)
                continue
            yield line_no, row


def _decode_json_cells(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str):
            v = value.strip()
            if (v.startswith("[") and v.endswith("]")) or (v.startswith("{") and v.endswith("}")):
                try:
                    value = json.loads(v)
                except json.JSONDecodeError:
                    pass
            elif v == "":
                value = None
        out[key] = value
    return out


def iter_csv(path: str | Path, problems: Problems, required: Iterable[str] = (),
             max_field_chars: int = MAX_FIELD_CHARS, decode_json: bool = True
             ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file with a header. Cells holding JSON lists/objects are decoded."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = data[: exc.start].count(b"\n") + 1
        raise DataError("file is not valid UTF-8", file=str(path), line=line_no, expected="UTF-8 text",
                        got=f"byte {data[exc.start]:#04x}",
                        fix="re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    lines = text.splitlines(keepends=True)
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        first = lines[0] if lines else ""
        hint = next((d for d in (";", "\t", "|") if d in first and first.count(d) >= len(header)), None)
        raise DataError(
            "CSV header lacks required columns" + (f" (the header looks {hint!r}-separated)" if hint else ""),
            file=str(path), line=1, field=", ".join(missing), expected=f"comma-separated columns {list(required)}",
            got=f"columns {header[:8]}",
            fix="save the file comma-separated" if hint else f"add the columns {missing}",
        )
    for row in reader:
        line_no = reader.line_num
        if None in row:
            problems.add(DataError("row has more cells than the header", file=str(path), line=line_no,
                                   expected=f"{len(header)} cells", got=f"{len(header) + len(row[None])} cells",
                                   fix="quote cells that contain commas"), row)
            continue
        try:
            _check_sizes(row, max_field_chars, problems, (str(path), line_no))
        except DataError as err:
            problems.add(err.located(str(path), line_no), {k: (v[:200] if isinstance(v, str) else v)
                                                             for k, v in row.items()})
            continue
        yield line_no, (_decode_json_cells(row) if decode_json else dict(row))


def iter_parquet(path: str | Path, problems: Problems, max_field_chars: int = MAX_FIELD_CHARS
                 ) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError("cannot read Parquet file", file=str(path), expected="a Parquet file",
                        got=f"{type(exc).__name__}: {str(exc)[:120]}", fix="check the file was fully written") from None
    for i, row in enumerate(table.to_pylist(), start=1):
        try:
            _check_sizes(row, max_field_chars, problems, (str(path), i))
        except DataError as err:
            problems.add(err.located(str(path), i), None)
            continue
        yield i, _decode_json_cells(row)


def read_format(path: str | Path, fmt: str | None = None) -> str:
    """The record format of an existing file, from its bytes (``fmt`` or the suffix only settle JSONL vs CSV)."""
    if fmt and fmt != "auto":
        file_format(path, fmt)  # an unknown --format is still an error
        declared: str | None = fmt
    else:
        declared = SUFFIXES.get(Path(path).suffix.lower())
    return sniff_format(path, declared)


def iter_rows(path: str | Path, problems: Problems, fmt: str | None = None, required: Iterable[str] = (),
              max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[tuple[int, dict[str, Any]]]:
    kind = read_format(path, fmt)
    if kind == "jsonl":
        return iter_jsonl(path, problems, max_field_chars)
    if kind == "csv":
        return iter_csv(path, problems, required, max_field_chars)
    return iter_parquet(path, problems, max_field_chars)


def read_records(path: str | Path, cls: type[T], *, fmt: str | None = None, on_error: str = "fail",
                 problems: Problems | None = None, id_field: str | None = None,
                 max_field_chars: int = MAX_FIELD_CHARS) -> list[T]:
    """Read and validate records of type ``cls`` (``Ad``, ``User``, ...). Duplicate ids are errors."""
    problems = problems if problems is not None else Problems(on_error)
    required = getattr(cls, "REQUIRED", ())
    id_field = id_field or (required[0] if required else None)
    seen: dict[str, int] = {}
    out: list[T] = []
    for line_no, row in iter_rows(path, problems, fmt, required, max_field_chars):
        try:
            rec = cls.from_dict(row)  # type: ignore[attr-defined]
        except DataError as err:
            problems.add(err.located(str(path), line_no), row)
            continue
        if id_field:
            rid = getattr(rec, id_field)
            if rid in seen:
                problems.add(DataError(f"duplicate {id_field} {rid!r} (first on line {seen[rid]})", file=str(path),
                                       line=line_no, field=id_field, expected="unique ids",
                                       got=f"{rid!r} again", fix="merge or drop the duplicate rows"), row)
                continue
            seen[rid] = line_no
        out.append(rec)
    return out


def _to_row(rec: Any) -> dict[str, Any]:
    return rec.to_dict() if hasattr(rec, "to_dict") else dict(rec)


def write_records(records: Iterable[Any], path: str | Path, fmt: str | None = None) -> Path:
    """Write records (dataclasses with ``to_dict`` or plain dicts) atomically: temp file, then rename."""
    path = Path(path)
    kind = file_format(path, fmt)
    rows = [_to_row(r) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if kind == "jsonl":
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif kind == "csv":
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
                                 for k, v in row.items()})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Parquet needs one type per column: nested objects with free-form keys go in as JSON text.
        flat = [{k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) or _is_list_of_dicts(v) else v
                 for k, v in row.items()} for row in rows]
        pq.write_table(pa.Table.from_pylist(flat), tmp)
    os.replace(tmp, path)
    return path


def _is_list_of_dicts(v: Any) -> bool:
    return isinstance(v, list) and any(isinstance(x, dict) for x in v)


def write_rejects(problems: Problems, path: str | Path) -> Path | None:
    """Every rejected row with its reason, one JSON object per line (nothing is dropped silently)."""
    if not problems.rejected_rows:
        return None
    return write_records(problems.rejected_rows, path, "jsonl")
