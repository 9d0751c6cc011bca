"""Broken versions of an ad's title, as negatives for the judge: the same user and ad, unreadable text.

A judge trained only on real titles (and fluent rewrites of them) scores a title by its words and the
user's interest in them, so a title made of the ad's own words in a broken order can score as well as the
real one. Each corruption below keeps the ad's words but breaks the title the way the micro generator
does; ``training.reward.train`` puts them beside the real title's positive row (``corruption_negatives``),
ranked below it by a pairwise loss (or as label-0 click rows), and measures on held-out users how often the
real title beats each kind.

    >>> import random
    >>> corrupt("Sharpie Permanent Markers, Fine Point, Assorted Colors, 12 Count", "stray_colons",
    ...         random.Random(1), brand="Sharpie")
    'Sharpie: Permanent Markers, Fine: Point: Assorted Colors: 12: Count'
    >>> corrupt("Sharpie Permanent Markers, Fine Point, Assorted Colors, 12 Count", "dropped_facts",
    ...         random.Random(1), brand="Sharpie")
    'Permanent Markers, Fine Point, Assorted Colors'
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from creator.records.rewrite import TRAIL_DROP, good_hook, hook
from creator.records.types import Ad

CORRUPTIONS = ("shuffled", "cut_hook", "stacked_connectives", "stray_colons", "dropped_facts")
CONNECTIVES = ("for", "with", "and", "to", "of", "by", "in", "almost for", "made to", "away")


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,;:)])", r"\1", " ".join(text.split()))
    text = re.sub(r"\(\s*\)", "", text)
    return " ".join(text.strip(" ,;:-").split())


def shuffled(words: list[str], rng: random.Random) -> str | None:
    """The title's words in a random order (never the original order)."""
    if len(set(words)) < 2:
        return None
    for _ in range(20):
        out = words[:]
        rng.shuffle(out)
        if out != words:
            return " ".join(out)
    return None


def cut_hook(title: str, hooks: Sequence[str], rng: random.Random) -> str | None:
    """A selling point's hook cut mid-phrase (ending on a connective), joined to the title as the generator
    joins hooks (``hook: title`` or ``title - hook``); without a hook, the title itself cut mid-phrase."""
    source = rng.choice(list(hooks)) if hooks else title
    words = source.split()
    if len(words) < 3:
        return None
    cut = words[: rng.randint(1, len(words) - 2)]  # at least two words of the phrase are lost
    if cut[-1].lower() not in TRAIL_DROP:
        cut.append(rng.choice(("to", "for", "with", "and", "of")))
    part = " ".join(cut)
    if not hooks:
        return part
    return f"{part}: {title}" if rng.random() < 0.5 else f"{title} - {part}"


def stacked_connectives(words: list[str], rng: random.Random) -> str | None:
    """Two or three connectives stacked ("for with and") at one or two places inside the title."""
    if len(words) < 2:
        return None
    out = words[:]
    for _ in range(rng.randint(1, 2)):
        stack = rng.sample(CONNECTIVES, rng.randint(2, 3))
        at = rng.randint(1, len(out) - 1)
        out[at:at] = stack
    return " ".join(out)


def stray_colons(words: list[str], rng: random.Random) -> str | None:
    """The title cut into fragments of one to three words joined by colons, one fragment sometimes repeated."""
    if len(words) < 3:
        return None
    frags, i = [], 0
    while i < len(words):
        n = rng.randint(1, 3)
        frags.append(" ".join(words[i : i + n]).strip(",;"))
        i += n
    if len(frags) < 3:  # at least two stray colons
        frags = [words[0], " ".join(words[1:-1]), words[-1]]
    if rng.random() < 0.5:
        frags.insert(rng.randint(0, len(frags)), rng.choice(frags))
    return ": ".join(f for f in frags if f)


def dropped_facts(title: str, brand: str) -> str | None:
    """The title without its facts: numbers, sizes, counts, model codes in brackets and the brand."""
    text = re.sub(r"\([^)]*\)", " ", title)
    brand_words = {w.lower() for w in brand.split()} if brand else set()
    kept = [w for w in text.split() if not re.search(r"\d", w) and w.lower().strip(",;:") not in brand_words]
    # a count word left alone after its number ("12 Count" -> "Count") goes too
    while kept and kept[-1].lower().strip(",;:") in {"count", "pack", "ct", "pk", "sheets", "set", "each"}:
        kept.pop()
    out = _tidy(" ".join(kept))
    return out if out and out != _tidy(title) else None


def corrupt(title: str, kind: str, rng: random.Random, *, hooks: Sequence[str] = (), brand: str = "") -> str | None:
    """One corruption of ``kind`` (see ``CORRUPTIONS``), or None when this title has nothing to break that way."""
    words = title.split()
    if kind == "shuffled":
        out = shuffled(words, rng)
    elif kind == "cut_hook":
        out = cut_hook(title, hooks, rng)
    elif kind == "stacked_connectives":
        out = stacked_connectives(words, rng)
    elif kind == "stray_colons":
        out = stray_colons(words, rng)
    elif kind == "dropped_facts":
        out = dropped_facts(title, brand)
    else:
        raise ValueError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")
    return out if out and " ".join(out.split()) != " ".join(words) else None


def title_corruptions(ad: Ad, seed: int, kinds: Sequence[str] = CORRUPTIONS) -> dict[str, str]:
    """kind -> the corrupted title of ``ad`` (kinds that do not apply are left out). Deterministic in
    ``seed`` and the ad: each (seed, ad id, kind) has its own random stream."""
    title = " ".join(ad.title.split())
    hooks = [h for h in map(hook, ad.selling_points) if h and good_hook(h, title)]
    out = {}
    for kind in kinds:
        got = corrupt(title, kind, random.Random(f"{seed}:{ad.ad_id}:{kind}"), hooks=hooks, brand=ad.brand)
        if got:
            out[kind] = got
    return out
