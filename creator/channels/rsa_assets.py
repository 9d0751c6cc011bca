"""Headlines and descriptions of one responsive search ad, all grounded in the ad and all passing the channel guard.

Google Ads asks for at least 3 headlines (at most 15, each <= 30 characters) and 2 descriptions (at most 4,
each <= 90) per responsive search ad. ``rsa_assets`` fills them, best first, from material that states
nothing the ad does not:

* headlines: the title(s) served to the segment (the personalized title and the other candidates of the same
  (segment, ad) that passed the guard), the ad's own compliant title (original or shortened,
  ``creator.channels.shortening``) and the other short forms of the ad's own words (brand + product noun phrase
  [+ fact], leaving out the forms cut right after "with", "and", ... that name a part, not the product);
* descriptions: the ad's selling points cut at a phrase boundary (punctuation, or before "and", "which", ...)
  or, failing one, at a word boundary within 90 characters; a point that fails the guard because it does not
  name the product (``off_topic``) is tried again after the ad's short name ("Expo Dry Erase Markers. These
  markers erase cleanly"); then the ad's own title where it fits whole or at a phrase boundary.

Every text is checked with the guard of its field (``google-rsa-headline`` / ``google-rsa-description``);
what fails is left out, never trimmed further. An ad that still has too few is returned as it is
(``RsaAssets.complete`` is False) so the caller can say so.

    >>> from creator.guard.check import Guard, GuardConfig
    >>> ad = Ad(ad_id="1", title="Pilot G2 Retractable Gel Ink Pens, Fine Point, 12-Pack", brand="Pilot",
    ...         selling_points=["Smooth writing gel ink with a comfortable grip, refillable and retractable"])
    >>> cut_at_boundary(ad.selling_points[0], 40)
    'Smooth writing gel ink'
    >>> got = rsa_assets(ad, [], Guard(GuardConfig.for_channel("google-rsa-headline")),
    ...                  Guard(GuardConfig.for_channel("google-rsa-description")))
    >>> got.headlines[:3], got.descriptions
    (['Pilot Gel Ink Pens, 12-Pack', 'Pilot Ink Pens, 12-Pack', 'Pilot Pens, 12-Pack'], \
['Smooth writing gel ink with a comfortable grip, refillable and retractable', \
'Pilot G2 Retractable Gel Ink Pens, Fine Point, 12-Pack'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from creator.channels.shortening import channel_fallback, shortened_titles
from creator.records.types import Ad

__all__ = ["MAX_DESCRIPTIONS", "MAX_HEADLINES", "MIN_DESCRIPTIONS", "MIN_HEADLINES", "RsaAssets",
           "cut_at_boundary", "rsa_assets"]

MIN_HEADLINES, MAX_HEADLINES, MIN_DESCRIPTIONS, MAX_DESCRIPTIONS = 3, 15, 2, 4

# a phrase ends before punctuation followed by a space, a spaced dash, or a joining word
_PHRASE_END = re.compile(r"[,;:.!?](?=\s)|\s[-\u2013\u2014]\s|\s(?=(?:and|but|while|which|so|that|whereas)\s)",
                         re.IGNORECASE)
# words a cut phrase must not end on ("... and provides a")
_DANGLING = frozenset("a an the and or but with for of to in on at by from as that which your our its is are "
                      "be so while whereas through into onto over under about like than when during without "
                      "within across along after before between up off per via".split())
_TRAIL = " ,;:-\u2013\u2014/&"


@dataclass
class RsaAssets:
    """The headlines and descriptions of one responsive search ad, best first, each distinct."""

    headlines: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Enough for Google Ads to post the ad: at least 3 headlines and 2 descriptions."""
        return len(self.headlines) >= MIN_HEADLINES and len(self.descriptions) >= MIN_DESCRIPTIONS


def _tidy(text: str) -> str:
    words = text.strip(_TRAIL).split()
    while words and words[-1].lower().strip(_TRAIL) in _DANGLING:
        words.pop()
    out = " ".join(words).strip(_TRAIL)
    if out.count("(") > out.count(")"):  # never leave a bracket open
        out = out[:out.rindex("(")].strip(_TRAIL)
    return out


def cut_at_boundary(text: str, max_chars: int, width: Callable[[str], int] = len, *,
                    word_cut: bool = True) -> str | None:
    """``text`` whole if it fits in ``max_chars`` (as ``width`` counts), else its longest prefix that ends at a
    phrase boundary and keeps at least 3 words, else (with ``word_cut``) at a word boundary; never ending
    on a joining word or inside brackets. None when nothing of at least 2 words fits."""
    text = " ".join(text.split()).strip(_TRAIL)
    if not text:
        return None
    if width(text) <= max_chars:
        return text
    best = {True: None, False: None}  # the longest cut at punctuation / before a joining word
    for m in _PHRASE_END.finditer(text):
        head = _tidy(text[:m.start()])
        if width(head) > max_chars:
            break
        if len(head.split()) >= 3:
            best[not m.group(0).isspace()] = head
    best = best[True] or best[False]  # punctuation ends a phrase more surely than "and" does
    if best is None and word_cut:
        words: list[str] = []
        for w in text.split():
            if width(" ".join([*words, w])) > max_chars:
                break
            words.append(w)
        best = _tidy(" ".join(words))
    return best if best and len(best.split()) >= 2 else None


def _passing(texts: Iterable[str | None], ad: Ad, guard: object, limit: int, seen: list[str]) -> None:
    keys = {t.casefold() for t in seen}
    for text in texts:
        if len(seen) >= limit:
            return
        if not text or text.casefold() in keys:
            continue
        if guard.check(text, ad, original_title=ad.title).passed:  # type: ignore[attr-defined]
            seen.append(text)
            keys.add(text.casefold())


def rsa_assets(ad: Ad, served: Iterable[str], headline_guard: object, description_guard: object, *,
               served_as: str = "headline") -> RsaAssets:
    """The headlines and descriptions of ``ad`` for one ad group. ``served``: the titles served to that
    segment, best first (personalized title, then the other passing candidates); ``served_as``: the field
    they were written for ("headline" or "description"). The guards are ``creator.guard.check.Guard`` objects
    for ``google-rsa-headline`` and ``google-rsa-description`` (with the run's banned words and brands)."""
    if served_as not in ("headline", "description"):
        raise ValueError(f"served_as must be 'headline' or 'description', got {served_as!r}")
    served = [t for t in served if t]
    d_width = description_guard.channel.width  # type: ignore[attr-defined]
    h_max = headline_guard.config.max_chars  # type: ignore[attr-defined]
    d_max = description_guard.config.max_chars  # type: ignore[attr-defined]
    out = RsaAssets()
    own_headline, _ = channel_fallback(ad, headline_guard)
    short = [t for t in shortened_titles(ad, max_chars=h_max, channel=headline_guard.channel)  # type: ignore[attr-defined]
             if _reads_whole(t, ad)]
    _passing([*(served if served_as == "headline" else []), own_headline, *short],
             ad, headline_guard, MAX_HEADLINES, out.headlines)
    points = [cut_at_boundary(p, d_max, d_width) for p in ad.selling_points]
    # a selling point that does not name the product fails the guard's off_topic rule: it is tried again
    # after the ad's short name ("Expo Dry Erase Markers. These markers erase cleanly")
    named = [_named(own_headline, cut_at_boundary(p, d_max - d_width(own_headline) - 2, d_width))
             for p, cut in zip(ad.selling_points, points, strict=True)
             if own_headline and cut and not description_guard.check(cut, ad).passed]  # type: ignore[attr-defined]
    _passing([*(served if served_as == "description" else []), *points, *named,
              cut_at_boundary(ad.title, d_max, d_width, word_cut=False)],
             ad, description_guard, MAX_DESCRIPTIONS, out.descriptions)
    return out


def _named(name: str, point: str | None) -> str | None:
    return f"{name}. {point}" if point else None


def _reads_whole(text: str, ad: Ad) -> bool:
    """False for a short form cut right after a joining word of the title ("Avery Pockets" from
    "Dividers with Pockets", "and Credit Card Shredder"): it names a part or an accessory, not the product."""
    words = text.split(",")[0].split()
    brand = ad.brand.split()
    if brand and [w.lower() for w in words[:len(brand)]] == [w.lower() for w in brand]:
        words = words[len(brand):]
    if not words or words[0].lower() in _DANGLING:
        return False
    title = [w.strip(_TRAIL).lower() for w in ad.title.split()]
    first = words[0].lower()
    return not any(title[i - 1] in _DANGLING for i in range(1, len(title)) if title[i] == first)
