"""Catalogs for the demo: the bundled sample, a ``--data`` path, or files a marketer uploads.

Uploads go through ``creator.io.load_catalog`` exactly as on the command line, so a bad row gives the
same ``DataError`` (file, line, field, expected, got, fix); only the server's temporary path is
replaced by the file's own name. Size is capped per file and in rows, so one upload cannot stall the
app for everyone else.

    >>> cat = load_sample()
    >>> len(cat.ads), len(cat.users)
    (300, 1000)
"""

from __future__ import annotations

from pathlib import Path

from creator.io import Catalog, load_catalog
from creator.records.errors import DataError

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "office_products_sample"
UPLOAD_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
MAX_FILE_MB = 20
MAX_ADS = 5_000
MAX_USERS = 20_000


def load_sample() -> Catalog:
    """The bundled Office Products sample (300 ads, 1,000 users)."""
    return load_catalog(SAMPLE_DIR, "jsonl")


def load_path(path: str | Path, fmt: str = "auto") -> Catalog:
    """A catalog given with ``hllm-creator demo --data``; checked against the same caps as uploads."""
    cat = load_catalog(path, fmt)
    _check_caps(cat, str(path))
    return cat


def load_uploads(paths: list[str | Path]) -> Catalog:
    """Ads and users from uploaded JSONL/CSV files (one kind per file), merged into one catalog."""
    if not paths:
        raise DataError("no file was uploaded", expected="an ads file and a users file (.jsonl or .csv)",
                        got="nothing",
                        fix="drop ads.jsonl and users.jsonl on the upload box, then press Load")
    merged = Catalog(source=", ".join(Path(p).name for p in paths), format="upload")
    for raw in paths:
        path = Path(raw)
        fmt = UPLOAD_SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise DataError("unsupported file type", file=path.name, expected=" or ".join(UPLOAD_SUFFIXES),
                            got=path.suffix or "no suffix", fix="export the table as JSON Lines or CSV")
        size_mb = path.stat().st_size / 2**20
        if size_mb > MAX_FILE_MB:
            raise DataError("file too large for the demo", file=path.name,
                            expected=f"at most {MAX_FILE_MB} MB",
                            got=f"{size_mb:.1f} MB",
                            fix="upload a sample, or run `hllm-creator generate` for the whole catalog")
        try:
            part = load_catalog(path, fmt)
        except DataError as err:
            raise _renamed(err, path) from None
        merged.ads.update(part.ads)
        merged.users.update(part.users)
        merged.warnings.extend(part.warnings)
    if not merged.ads or not merged.users:
        missing = "ads" if not merged.ads else "users"
        example = ('{"ad_id": "1", "title": "...", "description": "..."}' if missing == "ads"
                   else '{"user_id": "u1", "history": [{"item_id": "1", "title": "..."}]}')
        raise DataError(f"the upload has no {missing}", file=merged.source,
                        expected="one file of ads and one file of users", got=f"{len(merged.ads)} ads, "
                        f"{len(merged.users)} users", fix=f"add a {missing}.jsonl with rows like {example}")
    _check_caps(merged, merged.source)
    return merged


def _check_caps(cat: Catalog, name: str) -> None:
    for what, n, cap in (("ads", len(cat.ads), MAX_ADS), ("users", len(cat.users), MAX_USERS)):
        if n > cap:
            raise DataError(f"too many {what} for the interactive demo", file=name,
                            expected=f"at most {cap:,}",
                            got=f"{n:,}", fix="sample it first (`hllm-creator data sample`) or run "
                            "`hllm-creator generate` on the whole catalog")


def _renamed(err: DataError, path: Path) -> DataError:
    """The same error, naming the uploaded file rather than the server's temporary copy."""
    if err.file is None or Path(err.file).name == path.name:
        err.file = path.name
        err.args = (err.render(),)
    return err
