"""Compliance: per-channel length limits, banned words, and banned personal attributes.

Lengths are counted here, exactly: characters of the stripped title and whitespace-separated
words, against each channel's limits (``CHANNELS``: e.g. a 30-character search headline). Banned
words match whole words or phrases, case-insensitively. Banned *attributes* (a title that names or
implies a person's age, location, gender, health, religion, ethnicity, sexuality or finances) are
the serving guard's ``banned_attribute`` rule, so evaluation and serving never disagree on them.

    >>> c = Compliance(channels=["headline"], banned_words=["free shipping"], attribute_checker=None)
    >>> r = c(["Gel Pens, 12 Colors", "Gel Pens with FREE Shipping on every order today"])
    >>> r.channels["headline"].within_chars, r.banned_word_hits, r.compliant.tolist()
    (0.5, [[], ['free shipping']], [1.0, 0.0])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from creator.records.types import Ad
from eval.metrics.factuality import TitleChecker, default_guard


@dataclass(frozen=True)
class Channel:
    """Where a title is shown and its limits (``None`` = no limit)."""

    name: str
    max_chars: int | None = None
    max_words: int | None = None

    def __post_init__(self) -> None:
        for attr in ("max_chars", "max_words"):
            v = getattr(self, attr)
            if v is not None and v < 1:
                raise ValueError(f"channel {self.name!r}: {attr} must be >= 1 or None, got {v}")


# Public limits: Google Ads responsive search ads (30-char headline, 90-char description),
# Google Merchant Center product title (150), and our own generator default (120, the guard's).
CHANNELS: dict[str, Channel] = {
    "headline": Channel("headline", max_chars=30),
    "description": Channel("description", max_chars=90),
    "feed_title": Channel("feed_title", max_chars=150),
    "title": Channel("title", max_chars=120),
    "short": Channel("short", max_chars=60, max_words=8),
}


def parse_channel(spec: str) -> Channel:
    """'headline' (a known channel), a preset of ``creator.channels.presets`` ('google-rsa-headline', ...) or
    'name:CHARS[:WORDS]' such as 'push:40:6' or 'banner::5'."""
    if spec in CHANNELS:
        return CHANNELS[spec]
    from creator.channels.presets import CHANNELS as PRESETS

    if spec in PRESETS:
        return Channel(spec, max_chars=PRESETS[spec].max_chars)
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(
            f"unknown channel {spec!r}; use one of {sorted(CHANNELS)} or name:CHARS[:WORDS], e.g. push:40:6"
        )
    try:
        nums = [int(p) if p else None for p in parts[1:]]
    except ValueError:
        raise ValueError(f"channel {spec!r}: limits must be integers, e.g. push:40:6") from None
    return Channel(parts[0], nums[0], nums[1] if len(nums) > 1 else None)


def count_words(title: str) -> int:
    return len(title.split())


@dataclass
class ChannelResult:
    """Shares of titles within this channel's character / word limits (``within`` = both)."""

    channel: Channel
    chars_ok: np.ndarray
    words_ok: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.chars_ok * self.words_ok

    @property
    def within_chars(self) -> float:
        return float(self.chars_ok.mean()) if len(self.chars_ok) else float("nan")

    @property
    def within(self) -> float:
        return float(self.ok.mean()) if len(self.ok) else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_chars": self.channel.max_chars,
            "max_words": self.channel.max_words,
            "within_chars": self.within_chars,
            "within_words": float(self.words_ok.mean()) if len(self.ok) else float("nan"),
            "within": self.within,
        }


@dataclass
class ComplianceResult:
    channels: dict[str, ChannelResult]
    primary: str
    banned_word_hits: list[list[str]]
    attribute_hits: list[list[str]] = field(default_factory=list)
    lengths: np.ndarray | None = None  # characters per title

    @property
    def compliant(self) -> np.ndarray:
        """(N,) 0/1: within the primary channel's limits, no banned word, no banned attribute."""
        ok = self.channels[self.primary].ok.copy()
        ok *= np.array([0.0 if h else 1.0 for h in self.banned_word_hits])
        if self.attribute_hits:
            ok *= np.array([0.0 if h else 1.0 for h in self.attribute_hits])
        return ok

    def reasons(self, i: int) -> list[str]:
        """Why title ``i`` is not compliant, in words (empty when it is)."""
        ch = self.channels[self.primary]
        out = []
        if self.lengths is not None and self.lengths[i] == 0:
            out.append("empty title")
        elif not ch.chars_ok[i]:
            out.append(
                f"{int(self.lengths[i]) if self.lengths is not None else '?'} chars > "
                f"{ch.channel.max_chars} ({self.primary})"
            )
        if not ch.words_ok[i]:
            out.append(f"over {ch.channel.max_words} words ({self.primary})")
        out += [f"banned word {w!r}" for w in self.banned_word_hits[i]]
        if self.attribute_hits:
            out += [f"banned attribute {s!r}" for s in self.attribute_hits[i]]
        return out

    def to_dict(self) -> dict[str, Any]:
        n = len(self.banned_word_hits)
        return {
            "n": n,
            "primary_channel": self.primary,
            "compliant": float(self.compliant.mean()) if n else float("nan"),
            "channels": {k: v.to_dict() for k, v in self.channels.items()},
            "banned_word_rate": sum(1 for h in self.banned_word_hits if h) / n if n else float("nan"),
            "banned_attribute_rate": (
                sum(1 for h in self.attribute_hits if h) / n if n and self.attribute_hits else None
            ),
        }


class Compliance:
    """Rule checks a marketer signs off on. The first channel is the one ``compliant`` is judged against.

    ``attribute_checker``: the guard (default) or any ``TitleChecker``; ``None`` turns the banned
    attribute check off (it then shows as ``None`` in the report, never as a pass).
    """

    name = "compliance"
    _DEFAULT = object()

    def __init__(
        self,
        channels: Sequence[str | Channel] = ("title", "headline"),
        banned_words: Sequence[str] = (),
        attribute_checker: TitleChecker | None | object = _DEFAULT,
    ) -> None:
        if not channels:
            raise ValueError("give at least one channel, e.g. channels=['headline']")
        self.channels = [c if isinstance(c, Channel) else parse_channel(c) for c in channels]
        words = [w.strip() for w in banned_words if w and w.strip()]
        self.banned_words = words
        self._banned_re = [
            (w, re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, w.split())) + r"(?!\w)", re.IGNORECASE))
            for w in words
        ]
        if attribute_checker is Compliance._DEFAULT:
            attribute_checker = default_guard((), max_chars=10**6, check_banned_attributes=True)
        self.attribute_checker: TitleChecker | None = attribute_checker  # type: ignore[assignment]

    def __call__(self, titles: Sequence[str], ads: Sequence[Ad] | None = None) -> ComplianceResult:
        titles = [t or "" for t in titles]
        chars = np.array([len(t.strip()) for t in titles])
        from creator.channels.presets import CHANNELS as PRESETS  # a preset counts as its platform does (CJK = 2)

        widths = {ch.name: np.array([PRESETS[ch.name].width(t.strip()) for t in titles])
                  for ch in self.channels if ch.name in PRESETS}
        words = np.array([count_words(t) for t in titles])
        results = {}
        for ch in self.channels:
            # An empty title fits no channel: it would show nothing.
            counted = widths.get(ch.name, chars)
            fits = (counted <= ch.max_chars) if ch.max_chars else np.ones(len(titles), dtype=bool)
            chars_ok = fits & (chars > 0)
            words_ok = (words <= ch.max_words) if ch.max_words else np.ones(len(titles), dtype=bool)
            results[ch.name] = ChannelResult(ch, chars_ok.astype(float), words_ok.astype(float))
        hits = [[w for w, rx in self._banned_re if rx.search(t)] for t in titles]
        attr_hits: list[list[str]] = []
        if self.attribute_checker is not None:
            if ads is None or len(ads) != len(titles):
                raise ValueError("the banned-attribute check needs one ad per title; pass ads=")
            for t, ad in zip(titles, ads, strict=True):
                verdict = self.attribute_checker.check(t, ad)
                attr_hits.append([f.span for f in verdict.failures if f.rule == "banned_attribute"])
        return ComplianceResult(results, self.channels[0].name, hits, attr_hits, chars)
