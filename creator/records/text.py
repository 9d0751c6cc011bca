"""Cleaning of messy product text into selling points.

Amazon descriptions arrive as stringified Python lists of paragraphs holding HTML, CSS blocks
inside comments (``<!-- .headerM {...} -->``), doubly escaped entities (``&amp;quot;``), repeated
paragraphs and 5,000-character blobs. ``clean_html`` turns one paragraph into plain text with a
real HTML parser; ``selling_points`` splits the cleaned text into short, de-duplicated claims.

    >>> clean_html('<b>Fine&amp;quot;point</b> <!-- .x {color:red} --> pen')
    'Fine"point pen'
"""

from __future__ import annotations

import ast
import html
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning

from creator.records.errors import DataError

_CSS_BLOCK = re.compile(r"(?:[.#@]?[A-Za-z_][\w\-]*(?:\s*[,>]\s*[.#]?[\w\-]+)*\s*)?\{[^{}]*\}")
_WS = re.compile(r"\s+")
_BROKEN_ENTITY = re.compile(r"(?<!&)amp;(quot|amp|lt|gt|apos|nbsp|#\d+);")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\s*[\u2022\u25cf\u25aa\u2023\u2043•·|]\s*|\n+|;\s+")
_INSTRUCTION_LIKE = re.compile(
    r"ignore (?:all |any |the )?(?:previous|prior|above|earlier) (?:instructions|prompts?|rules)"
    r"|disregard (?:all |any |the )?(?:previous|prior|above) "
    r"|you are now (?:an? )?(?:ai|assistant|language model|chatbot)"
    r"|system prompt|<\|im_start\|>|<\|im_end\|>|###\s*instruction|\[/?INST\]"
    r"|(?:output|print|say|respond with) (?:only )?[\"'][^\"']{0,40}[\"'] (?:instead|no matter)",
    re.IGNORECASE,
)


def parse_paragraph_list(raw: str, *, field_name: str = "description") -> list[str]:
    """Parse a Python-literal list of strings (``"['a', 'b']"``) safely; plain text gives ``[raw]``.

    Uses ``ast.literal_eval`` (never ``eval``). A value that starts like a list but is not a valid
    literal list of strings raises ``DataError``.
    """
    text = (raw or "").strip()
    if not text.startswith("["):
        return [text] if text else []
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise DataError(
            "list column is not a Python-literal list",
            field=field_name,
            expected="a literal list such as ['a', 'b']",
            got=f"{text[:60]!r}... ({type(exc).__name__})",
            fix="quote the list items and close the brackets, or give plain text",
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise DataError("list column holds something other than strings", field=field_name,
                        expected="a list of strings", got=f"{type(value).__name__}", fix="give a list of strings")
    return [str(v) for v in value]


def repair_paragraph_list(raw: str) -> list[str]:
    """Best-effort split of a mangled list literal (mixed or unescaped quotes) into paragraphs."""
    body = (raw or "").strip()
    if body.startswith("["):
        body = body[1:]
    if body.endswith("]"):
        body = body[:-1]
    body = body.strip()
    if body[:1] in "'\"":
        body = body[1:]
    if body[-1:] in "'\"":
        body = body[:-1]
    return [p for p in re.split(r"['\"]\s*,\s*['\"]", body) if p.strip()]


def clean_html(text: str) -> str:
    """One paragraph of HTML-ish text → plain text (comments, style/script and CSS blocks removed)."""
    if not text:
        return ""
    # Entities are sometimes escaped twice (&amp;quot;) or lost their '&' (amp;quot;): repair, then
    # unescape until stable (bounded).
    text = _BROKEN_ENTITY.sub(r"&\1;", text)
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    if "<" in text or "&" in text:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(text, "lxml")
        for node in soup.find_all(string=lambda s: isinstance(s, Comment)):
            node.extract()
        for tag in soup(["style", "script", "noscript", "head", "title", "meta", "link"]):
            tag.decompose()
        text = soup.get_text(" ")
        text = html.unescape(text)
    text = _CSS_BLOCK.sub(" ", text)
    text = text.replace("\u00a0", " ").replace("\u200b", "")
    return _WS.sub(" ", text).strip()


def looks_like_instructions(text: str) -> bool:
    """True for text that tries to steer a language model ("ignore previous instructions ...")."""
    return bool(_INSTRUCTION_LIKE.search(text or ""))


def _norm_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass
class CleaningStats:
    """Counts over a whole catalog: what cleaning removed, so a person can audit it."""

    ads: int = 0
    html_paragraphs: int = 0
    chars_in: int = 0
    chars_out: int = 0
    duplicate_points: int = 0
    instruction_like_points: int = 0
    truncated_points: int = 0
    repaired_descriptions: int = 0
    capped_points: int = 0
    ads_without_points: int = 0
    reasons: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "reasons"}


def selling_points(
    paragraphs: list[str],
    *,
    title: str = "",
    max_points: int = 8,
    max_chars: int = 160,
    min_words: int = 3,
    stats: CleaningStats | None = None,
) -> list[str]:
    """Split cleaned paragraphs into short claims: de-duplicated, title echoes removed, capped.

    A claim longer than ``max_chars`` is cut at a word boundary; claims that look like
    instructions to a language model are dropped (and counted in ``stats``).
    """
    stats = stats if stats is not None else CleaningStats()
    seen = {_norm_key(title)} if title else set()
    points: list[str] = []
    for para in paragraphs:
        stats.chars_in += len(para)
        if "<" in para or "&" in para:
            stats.html_paragraphs += 1
        cleaned = clean_html(para)
        stats.chars_out += len(cleaned)
        for piece in _SENTENCE_SPLIT.split(cleaned):
            piece = piece.strip(" -*:,.").strip()
            if len(piece.split()) < min_words:
                continue
            if looks_like_instructions(piece):
                stats.instruction_like_points += 1
                continue
            if len(piece) > max_chars:
                cut = piece[:max_chars].rsplit(" ", 1)[0].rstrip(",;:")
                piece = cut
                stats.truncated_points += 1
            key = _norm_key(piece)
            if key in seen or any(key in s or s in key for s in seen if len(s) > 20 and len(key) > 20):
                stats.duplicate_points += 1
                continue
            seen.add(key)
            if len(points) >= max_points:
                stats.capped_points += 1
                continue
            points.append(piece)
    return points
