"""What a record file holds, read from its bytes, not its name: Parquet, JSONL or CSV text, or an error.

Parquet files start with the magic bytes ``PAR1``; anything else must be UTF-8 text, where a first
character ``{`` or ``[`` means JSON lines and anything else CSV. An empty file, a binary file and a
compressed file each get a one-line ``DataError`` that says what the file looks like.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ads.dat"
    >>> _ = p.write_text('{"ad_id": "1", "title": "Pen"}\\n')
    >>> sniff_format(p)
    'jsonl'
"""

from __future__ import annotations

from pathlib import Path

from creator.records.errors import DataError

PARQUET_MAGIC = b"PAR1"
SAMPLE_BYTES = 64 * 1024
# magic bytes of files people hand over by mistake -> what they look like
_KNOWN_BINARY: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"PK\x03\x04", "a zip archive (or an Excel .xlsx workbook)"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document"),
)
_TEXT_FORMATS = ("jsonl", "csv")
RECORD_FIX = "give a Parquet file, or UTF-8 text with one JSON object per line (JSONL) or a CSV with a header"


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(SAMPLE_BYTES)
    except OSError as exc:
        raise DataError("cannot read the file", file=str(path), expected="a readable file",
                        got=f"{type(exc).__name__}: {exc.strerror or exc}", fix="check the path and its permissions"
                        ) from None


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, or more than 10% of the sample undecodable or control characters."""
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", errors="replace")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    return odd > 0.1 * max(1, len(text))


def sniff_format(path: str | Path, declared: str | None = None) -> str:
    """``'parquet'``, ``'jsonl'`` or ``'csv'`` from the bytes of ``path``; a ``DataError`` when it holds none.

    ``declared`` (from ``--format`` or the file's suffix) settles JSONL against CSV for text; the bytes
    settle Parquet against text, so a Parquet file named ``.csv`` (or a CSV named ``.parquet``) still reads.
    """
    path = Path(path)
    head = _head(path)
    if not head.strip():
        raise DataError("file is empty" if not head else "file holds only blank lines", file=str(path),
                        expected="records (ads, users or impressions)", got=f"{len(head)} bytes",
                        fix="write the records into it, or point at the right file")
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    for magic, what in _KNOWN_BINARY:
        if head.startswith(magic):
            raise DataError(f"file looks like {what}", file=str(path), expected="Parquet, JSONL or CSV records",
                            got=f"starts with {head[:8]!r}",
                            fix="decompress or export it first, then " + RECORD_FIX)
    if _looks_binary(head):
        raise DataError("file looks like binary data, not Parquet (no PAR1 magic bytes) and not UTF-8 text",
                        file=str(path), expected="Parquet, JSONL or CSV records",
                        got=f"starts with {head[:8]!r}", fix=RECORD_FIX)
    if declared in _TEXT_FORMATS:
        return declared
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "jsonl" if first in (b"{", b"[") else "csv"
