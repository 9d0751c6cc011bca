"""Channels: where a title is shown, its length budget as the platform counts it, and the platform's rules.

One option everywhere a title is produced or judged (``build-cot``, ``generate``, ``eval``, ``check``, the
demo, ``PipelineConfig``/``GuardConfig`` in Python). Where each number comes from:

* ``google-rsa-headline`` 30 and ``google-rsa-description`` 90: Google Ads Help, "About responsive search
  ads" (up to 15 headlines of at most 30 characters, up to 4 descriptions of at most 90). Google counts a
  double-width character (Chinese, Japanese, Korean) as 2 ("character limits for double-width languages"),
  which ``display_width`` reproduces with ``unicodedata.east_asian_width`` (W and F count 2).
* ``merchant-title`` 150: Google Merchant Center product data specification, ``title`` attribute (max 150).
* ``meta-headline`` 40: the Meta Ads Guide's *recommended* headline length ("Text recommendations:
  Headline: 40 characters") for Facebook Feed and the other Facebook placements (facebook.com/business/
  ads-guide, e.g. ``image/facebook-feed``). Older editions of the guide said 25; the 27 often quoted comes
  from third-party blogs, not from the guide. Meta accepts longer headlines but may truncate them: a
  recommendation, not a hard platform limit.
* ``generic`` 120: today's behaviour, unchanged: the guard's ``max_chars`` default, plain ``len``, no
  platform rules and no budget inside decoding (so existing runs reproduce exactly).

Rules per channel: Google's editorial rules (``creator.guard.editorial``) for the Google Ads channels; Merchant
Center titles are product data, not ad copy, so only the length applies there besides the guard's own
rules. Meta's personal-attributes policy (``creator.guard.editorial.find_meta_attributes``) for the Meta channel.

    >>> get_channel("google-rsa-headline").max_chars, display_width("Gel Pens"), display_width("ペン")
    (30, 8, 4)
    >>> get_channel("google-rsa-headline").width("ペン 12本")
    9
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from creator.records.errors import DataError

__all__ = ["CHANNELS", "DEFAULT_CHANNEL", "Channel", "channel_names", "display_width", "get_channel"]

DEFAULT_CHANNEL = "generic"


def display_width(text: str) -> int:
    """Characters as Google Ads counts them: East-Asian wide (W) and fullwidth (F) characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


@dataclass(frozen=True)
class Channel:
    """A placement and its limits.

    ``max_exclamations``: "!" allowed in one title (``None``: no rule); ``editorial``: Google's editorial
    rules apply; ``meta_attributes``: Meta's personal-attributes rules apply; ``wide_counts_double``:
    double-width characters count 2; ``decode_budget``: grounded decoding stops a title that cannot end
    within ``max_chars`` (off only for ``generic``, to keep its outputs as they were)."""

    name: str
    max_chars: int
    max_exclamations: int | None = None
    editorial: bool = False
    meta_attributes: bool = False
    wide_counts_double: bool = False
    decode_budget: bool = True
    export: str | None = None  # the upload file this channel's titles go into: "headline" or "description"
    source_url_comment: str = ""

    def __post_init__(self) -> None:
        if self.max_chars < 1:
            raise ValueError(f"channel {self.name!r}: max_chars must be >= 1, got {self.max_chars}")
        if self.max_exclamations is not None and self.max_exclamations < 0:
            raise ValueError(f"channel {self.name!r}: max_exclamations must be >= 0 or None")

    def width(self, text: str) -> int:
        """The title's length as this channel's platform counts it."""
        return display_width(text) if self.wide_counts_double else len(text)

    @property
    def budget(self) -> int | None:
        """The character budget grounded decoding enforces (None: decoding is unbounded, as today)."""
        return self.max_chars if self.decode_budget else None


CHANNELS: dict[str, Channel] = {c.name: c for c in (
    Channel("google-rsa-headline", 30, max_exclamations=0, editorial=True, wide_counts_double=True,
            export="headline",
            source_url_comment="https://support.google.com/google-ads/answer/7684791 (headlines <= 30)"),
    Channel("google-rsa-description", 90, max_exclamations=1, editorial=True, wide_counts_double=True,
            export="description",
            source_url_comment="https://support.google.com/google-ads/answer/7684791 (descriptions <= 90)"),
    Channel("meta-headline", 40, meta_attributes=True,
            source_url_comment="https://www.facebook.com/business/ads-guide/image/facebook-feed "
                               "(text recommendations: headline 40)"),
    Channel("merchant-title", 150, wide_counts_double=True,
            source_url_comment="https://support.google.com/merchants/answer/6324415 (title <= 150)"),
    Channel(DEFAULT_CHANNEL, 120, decode_budget=False, source_url_comment="the guard's default max_chars"),
)}


def channel_names() -> list[str]:
    return list(CHANNELS)


def get_channel(name: str | Channel | None) -> Channel:
    """The preset called ``name`` (a ``Channel`` passes through; None is ``generic``); an unknown name is a
    one-line ``DataError`` that lists the presets."""
    if isinstance(name, Channel):
        return name
    key = DEFAULT_CHANNEL if name is None else str(name).strip().lower()
    if key not in CHANNELS:
        raise DataError("unknown channel", field="channel", expected=f"one of {', '.join(CHANNELS)}",
                        got=repr(name), fix="pass --channel with one of those names")
    return CHANNELS[key]
