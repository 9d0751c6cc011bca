"""The project's error type for bad input: it says where, what was expected, what came, and the fix."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """Bad input data. ``str(err)`` reads as one actionable line, e.g.

        users.jsonl:12: field 'history': expected a list of history items, got str 'abc'.
        Fix: write history as [{"item_id": "1", "title": "..."}, ...]
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        got: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.expected = expected
        self.got = got
        self.fix = fix
        super().__init__(self.render())

    def located(self, file: str | None = None, line: int | None = None) -> DataError:
        """The same error with the file and line filled in (by readers that know them)."""
        if file is not None and self.file is None:
            self.file = file
        if line is not None and self.line is None:
            self.line = line
        self.args = (self.render(),)
        return self

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"row {self.line}: "
        parts = [where + self.message]
        if self.field:
            parts.append(f"field {self.field!r}")
        if self.expected:
            parts.append(f"expected {self.expected}")
        if self.got:
            parts.append(f"got {self.got}")
        text = "; ".join(parts) + "."
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("message", "file", "line", "field", "expected", "got", "fix")}


@dataclass
class Problems:
    """Problems found while reading, under ``--on-error skip``: every one kept, with the row it rejected."""

    on_error: str = "fail"
    errors: list[DataError] = field(default_factory=list)
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    capped: list[dict[str, Any]] = field(default_factory=list)  # oversized descriptions cut, never a lost row

    def __post_init__(self) -> None:
        if self.on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {self.on_error!r}")

    def add(self, err: DataError, raw: Any = None) -> None:
        """Raise under ``fail``; record the error and the raw row under ``skip``."""
        if self.on_error == "fail":
            raise err
        self.errors.append(err)
        self.rejected_rows.append({"error": err.to_dict(), "raw": _printable(raw)})

    def note_capped(self, file: str, line: int | None, field_name: str, chars_in: int, chars_out: int) -> None:
        """Count (and log, for the first few) a text field that was cut to the size limit."""
        self.capped.append({"file": file, "line": line, "field": field_name, "chars_in": chars_in,
                            "chars_out": chars_out})
        if len(self.capped) <= 5:
            logger.warning("%s:%s: field %r is %s characters long; kept, cut at a sentence boundary to %s",
                           file, line, field_name, f"{chars_in:,}", f"{chars_out:,}")

    def __len__(self) -> int:
        return len(self.errors)


def _printable(raw: Any, limit: int = 2000) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str) and len(raw) > limit:
        return raw[:limit] + f"... [{len(raw) - limit} more characters]"
    return raw
