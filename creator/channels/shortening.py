"""The fallback under a channel: a title that complies, made of the ad's own words, when nothing generated passes.

An original title longer than the channel's budget is never served cut mid-word. ``channel_fallback`` serves
the original when the channel's guard passes it; otherwise the first of ``shortened_titles`` that passes
(brand + product noun phrase + the strongest grounded fact, then shorter forms); otherwise nothing
(``source="withheld"``, an empty title a feed must skip), so what is served always complies.

The product noun phrase is the ad title's first segment (up to the first comma, dash, bracket or colon), the
brand taken off its front; shorter forms drop its leading modifiers, so the head noun, last in an English
noun phrase, stays. The strongest fact is the first size, then quantity, then count the title states.

    >>> from creator.guard.check import Guard, GuardConfig
    >>> ad = Ad(ad_id="1", title="Pilot G2 Retractable Premium Gel Ink Roller Ball Pens, Fine Point, 12-Pack",
    ...         brand="Pilot")
    >>> shortened_titles(ad, max_chars=30)[:2]
    ['Pilot Ball Pens, 12-Pack', 'Pilot Pens, 12-Pack']
    >>> channel_fallback(ad, Guard(GuardConfig.for_channel("google-rsa-headline")))
    ('Pilot Ball Pens, 12-Pack', 'shortened')
"""

from __future__ import annotations

import re

from creator.channels.presets import Channel, get_channel
from creator.records.facts import extract_facts
from creator.records.types import Ad

__all__ = ["channel_fallback", "shortened_titles"]

_SEGMENT = re.compile(r"\s*(?:,|;|:|\(|\)|\[|\]|\s[-\u2013\u2014|/]\s)\s*")
_FACT_ORDER = {"size": 0, "quantity": 1, "count": 2}


def _head_words(ad: Ad) -> list[str]:
    head = next((s for s in _SEGMENT.split(ad.title) if s.strip()), ad.title).split()
    brand = ad.brand.split()
    if brand and [w.lower() for w in head[:len(brand)]] == [w.lower() for w in brand]:
        head = head[len(brand):]
    return head


def _strongest_fact(ad: Ad) -> str | None:
    # a fact with its unit or noun ("0.7 mm", "12-Pack", "500 Sheets"); a bare number says nothing on its own
    facts = [f for f in extract_facts(ad.title) if f.kind in _FACT_ORDER and (f.kind == "size" or " " in f.norm)]
    if not facts:
        return None
    return min(facts, key=lambda f: _FACT_ORDER[f.kind]).text.strip()


def shortened_titles(ad: Ad, *, max_chars: int, channel: str | Channel | None = None) -> list[str]:
    """Candidate short titles of ``ad`` within ``max_chars`` (as ``channel`` counts), best first: with the
    brand and the fact, longest noun phrase first; then without the fact; then without the brand."""
    width = get_channel(channel).width
    head, fact, brand = _head_words(ad), _strongest_fact(ad), ad.brand.strip()
    phrases = [" ".join(head[i:]) for i in range(len(head))]
    out: list[str] = []
    for use_brand in ([True, False] if brand else [False]):
        for use_fact in ([True, False] if fact else [False]):
            for phrase in phrases:
                if use_fact and fact and fact.lower() in phrase.lower():
                    continue  # the fact is already in the phrase ("12 Pens"): the no-fact form covers it
                text = " ".join(p for p in (brand if use_brand else "", phrase) if p)
                if use_fact:
                    text = f"{text}, {fact}"
                if text and width(text) <= max_chars and text not in out:
                    out.append(text)
    return out


def channel_fallback(ad: Ad, guard: object) -> tuple[str, str]:
    """(title, source) served for ``ad`` when no generated title passes, under the guard's channel:
    the original if the guard passes it (``"original"``), else a passing shortened title (``"shortened"``),
    else ``("", "withheld")``. ``guard`` is a ``creator.guard.check.Guard`` (its config names the channel)."""
    cfg = guard.config  # type: ignore[attr-defined]
    if guard.check(ad.title, ad, original_title=ad.title).passed:  # type: ignore[attr-defined]
        return ad.title, "original"
    for text in shortened_titles(ad, max_chars=cfg.max_chars, channel=cfg.channel):
        if guard.check(text, ad, original_title=ad.title).passed:  # type: ignore[attr-defined]
            return text, "shortened"
    return "", "withheld"
