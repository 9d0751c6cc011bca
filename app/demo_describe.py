"""Plain-language text for the demo table: a segment's persona and the selling points a title echoes.

Descriptive statistics only (word counts over histories and profiles); nothing here scores, ranks or
writes titles.

    >>> from creator.records.types import HistoryItem, User
    >>> u = User("a", [HistoryItem("1", "Gel Pens, Black"), HistoryItem("2", "Gel Pens, Blue")])
    >>> v = User("b", [HistoryItem("3", "Stapler")])
    >>> segment_persona([u], history_word_counts([u, v]))
    'Buys gel, pens; e.g. Gel Pens, Black'
    >>> from creator.records.types import Ad
    >>> ad = Ad("9", "Pilot G2 Pens", selling_points=["Smooth gel ink", "Comfortable grip"])
    >>> points_echoed("Pilot G2 Pens with smooth gel ink", ad)
    ['Smooth gel ink']
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from creator.records.types import Ad, User

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = frozenset("""
and the for with pack count black blue red white green assorted colors color inch inches size sizes set
per box each new from you your our this that are was pcs piece pieces item items value bulk medium fine
point large small standard plus pro one two three four five six ten twelve dozen letter legal
""".split())
_PROFILE_KEYS = ("long_term_interests", "short_term_interests", "interests", "preferences", "needs")


def words(text: str) -> list[str]:
    """Lower-case content words (3+ letters, no stop words)."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _profile_terms(users: Iterable[User]) -> Counter:
    terms: Counter = Counter()
    for u in users:
        for key in _PROFILE_KEYS:
            value = (u.profile or {}).get(key)
            for term in value if isinstance(value, list) else [value] if isinstance(value, str) else []:
                if isinstance(term, str) and term.strip():
                    terms[term.strip().lower()] += 1
    return terms


def history_word_counts(users: Iterable[User]) -> Counter:
    """In how many (user, history item) pairs each content word occurs: the baseline for personas."""
    # dict.fromkeys, not set: the order breaks most_common's ties, and a set's order changes per process
    return Counter(w for u in users for h in u.history for w in dict.fromkeys(words(h.title)))


def segment_persona(members: list[User], overall: Counter, *, n_terms: int = 3) -> str:
    """One line about a segment: what its members' profiles say, or else what they buy more than others.

    With CoT profiles (``User.profile`` with interests/needs lists) on at least half the members, the
    most frequent profile terms are quoted; otherwise the history words most over-represented in the
    segment versus everyone (``overall`` = ``history_word_counts`` of all users; score = count in
    segment x segment share / overall share), plus the history
    title most common in the segment.
    """
    if not members:
        return "no users"
    profiled = [u for u in members if u.profile]
    if len(profiled) * 2 >= len(members):
        terms = [t for t, _ in _profile_terms(profiled).most_common(n_terms)]
        if terms:
            return "Interested in " + ", ".join(terms)
    seg = history_word_counts(members)
    if not seg:
        return "New users (no history yet)"
    n_seg = sum(seg.values())
    n_all = max(sum(overall.values()), 1)

    def lift(w: str) -> tuple[float, str]:
        return (seg[w] * (seg[w] / n_seg) / max(overall[w] / n_all, 1e-9), w)

    top = sorted((w for w in seg if seg[w] >= 2 or len(members) == 1), key=lift, reverse=True)[:n_terms]
    titles = Counter(h.title for u in members for h in u.history)
    common = min(titles.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    common = common if len(common) <= 60 else common[:57].rsplit(" ", 1)[0] + "..."
    head = ("Buys " + ", ".join(sorted(top))) if top else "Mixed interests"
    return f"{head}; e.g. {common}"


def points_echoed(title: str, ad: Ad) -> list[str]:
    """The ad's selling points that share a content word with ``title`` that the original title lacks."""
    added = set(words(title)) - set(words(ad.title))
    return [p for p in ad.selling_points if added & set(words(p))]
