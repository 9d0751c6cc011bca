"""What a user's history keeps coming back to, and how well a piece of ad text speaks to it.

The offline teacher used to rank an ad's selling points by one MiniLM similarity to the user's mean
history vector. Every shopper of one catalog sits near the catalog's centre, so that ranking was nearly
the same for every user of an ad and the teacher wrote one title for most of them. This module gives the
teacher a profile that differs between users:

* **recurring words**: content words of the history titles (brands, digits, stop words and personal
  attributes left out; a plural folded onto its singular), each counted once per title and weighted by
  recency (the newest title weighs 1, one ``half_life`` older 0.5);
* **angles**: families of words that say *why* the user buys (colour, bulk/count, refills and
  supplies, material, and the use: school, office, art and crafts, home, shipping, organising). An angle
  scores the recency-weighted share of history titles that use one of its words.

``score(text, profile)`` is how much of that profile a text (a selling point or a title segment) speaks
to: the weights of its recurring words, plus the weights of the angles it touches. Everything is built
from lists in order and ties keep the caller's order, so the same history gives the same profile in
every process.

    >>> p = user_profile(["Pilot Refill Ink, Blue", "Gel Pen Refills, Black", "Stapler"], brand_words={"pilot"})
    >>> p.top_angles(2)
    ['refill', 'colour']
    >>> score("Refillable: uses standard refills", p) > score("Ergonomic grip", p)
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from creator.guard.banned_attributes import find_banned_attributes

ANGLES: dict[str, tuple[str, ...]] = {
    "colour": (
        "color colour colorful colourful black blue red green yellow pink purple orange white brown grey gray "
        "gold silver neon pastel assorted rainbow vibrant bright teal navy"
    ).split(),
    "bulk": "bulk pack count value economy dozen bundle multipack box case ream reams".split(),
    "refill": "refill refills refillable replacement ink toner cartridge cartridges lead leads".split(),
    "material": "metal steel aluminum plastic leather wood wooden bamboo glass cardboard vinyl rubber".split(),
    "school": "school student students classroom teacher teachers homework kids college".split(),
    "office": "office desk desktop business professional work meeting conference filing".split(),
    "art": (
        "art artist artists craft crafts crafting drawing sketch sketching painting paint coloring "
        "calligraphy scrapbooking journaling"
    ).split(),
    "home": "home household kitchen family everyday daily".split(),
    "shipping": "shipping mailing mailer mailers envelope envelopes packing postage label labels".split(),
    "organising": "organizer organize organizing storage folder folders binder binders file sorter".split(),
}
_WORD_ANGLE = {w: a for a, words in ANGLES.items() for w in words}
_STOP = set(
    """a an and or the of for to in on with by from at as is are be this that these those it its our your
you we they their new set pcs piece pieces each per plus inch inches x ct pk oz lb mm cm size sizes item items
type great perfect ideal may vary packaging quality style""".split()
)


def norm(word: str) -> str:
    """Lower case, a plural folded onto its singular ('pens' -> 'pen', 'boxes' -> 'box'; 'glass' kept)."""
    w = word.lower().strip("'-&+")
    if len(w) > 4 and w.endswith(("xes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z'&+-]*", text)


@dataclass
class UserAngles:
    """A user's recurring words and angles, each a weight (recency-weighted share of history titles)."""

    words: dict[str, float] = field(default_factory=dict)
    angles: dict[str, float] = field(default_factory=dict)

    def top_words(self, n: int) -> list[str]:
        return [w for w, _ in sorted(self.words.items(), key=lambda kv: -kv[1])[:n]]

    def top_angles(self, n: int) -> list[str]:
        return [a for a, _ in sorted(self.angles.items(), key=lambda kv: -kv[1])[:n]]


def user_profile(
    history: list[str], *, brand_words: Iterable[str] = (), half_life: float = 3.0, min_titles: int = 2
) -> UserAngles:
    """The recurring words (in ``min_titles`` or more history titles) and the angles of ``history`` (oldest first).

    Weights are shares of the history's total recency weight, so long and short histories compare.
    """
    if not history:
        return UserAngles()
    banned = {norm(b) for b in brand_words}
    n = len(history)
    total = sum(0.5 ** ((n - 1 - i) / half_life) for i in range(n))
    counts: dict[str, float] = {}
    seen_in: dict[str, int] = {}
    angles: dict[str, float] = {}
    for i, title in enumerate(history):
        w = 0.5 ** ((n - 1 - i) / half_life) / total
        kept = list(
            dict.fromkeys(  # once per title, in order (never a set: its order depends on the hash seed)
                t
                for t in (norm(x) for x in words(title))
                if len(t) > 2 and t not in _STOP and t not in banned and not find_banned_attributes(t)
            )
        )
        for t in kept:
            counts[t] = counts.get(t, 0.0) + w
            seen_in[t] = seen_in.get(t, 0) + 1
        for a in dict.fromkeys(_WORD_ANGLE[t] for t in kept if t in _WORD_ANGLE):
            angles[a] = angles.get(a, 0.0) + w
    recurring = {t: c for t, c in counts.items() if seen_in[t] >= min_titles}
    return UserAngles(words=recurring, angles=angles)


def score(text: str, profile: UserAngles, *, angle_weight: float = 1.0) -> float:
    """How much of ``profile`` ``text`` speaks to: its recurring words' weights plus its angles' weights."""
    toks = list(dict.fromkeys(norm(w) for w in words(text)))
    s = sum(profile.words.get(t, 0.0) for t in toks)
    touched = dict.fromkeys(_WORD_ANGLE[t] for t in toks if t in _WORD_ANGLE)
    return s + angle_weight * sum(profile.angles.get(a, 0.0) for a in touched)


def touches(text: str, angle: str) -> bool:
    """Whether ``text`` uses a word of ``angle``."""
    return any(_WORD_ANGLE.get(norm(w)) == angle for w in words(text))


def describe(profile: UserAngles) -> str:
    """'recurring: refill, colour (ink, blue)' for the CoT's suitable-user-info line; '' with no profile."""
    angles, top = profile.top_angles(2), profile.top_words(3)
    if not angles and not top:
        return ""
    out = "recurring " + (", ".join(angles) if angles else "words")
    return out + (f" ({', '.join(top)})" if top else "")
