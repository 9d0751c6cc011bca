"""Penalties the judge applies to titles that try to game a click model.

A click model trained on catalog titles has never seen a title that pastes the user's own history,
repeats a keyword five times or runs to 300 characters: its score there is an extrapolation, and
generators optimised against it (DPO pairs, reranking) find exactly those titles. So the judge
subtracts explicit, documented penalties (in logit units) before it reports a probability:

- ``history_copy``: the title contains most of the words of one of the user's history titles and
  the ad's own title and selling points do not (relative to the ad when the ad is given, absolute
  otherwise): a title built from a selling point that happens to share words with the user's history
  is what personalization is for, not a copy.
- ``repetition``: a content word repeated more often than in the ad's own title (keyword stuffing).
- ``history_keywords``: words taken from the user's history that appear nowhere in the ad's text
  (title, description, selling points, brand): stuffing with the user's interests.
- ``length``: characters beyond ``max_chars`` (or the ad title's length plus ``max_added_chars``).

Ungrounded claims (numbers, model numbers, brands, attributes the ad does not support) are NOT
scored here: the guard (``creator.guard.check``) rejects them before any title reaches the judge, and
``eval.judge.GuardedJudge`` scores a rejected title as 0.

    >>> from creator.records.types import Ad, HistoryItem, User
    >>> user = User("u", [HistoryItem("1", "Moleskine Classic Notebook, Hard Cover, Large, Ruled")])
    >>> ad = Ad("9", "BIC Round Stic Ballpoint Pen, Medium Point, Black, 10-Count")
    >>> gaming_penalties(ad.title, user, ad, GamingConfig())["total"]
    0.0
    >>> pasted = "Moleskine Classic Notebook, Hard Cover, Large, Ruled"
    >>> gaming_penalties(pasted, user, ad, GamingConfig())["history_copy"] > 0
    True
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

from creator.records.types import Ad, User

STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the to with your you our this that".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


@dataclass
class GamingConfig:
    """Weights (logit units) and tolerances of the anti-gaming penalties. ``enabled=False`` turns all off."""

    enabled: bool = True
    copy_weight: float = 8.0
    copy_tolerance: float = 0.5  # share of a history title's words that may reappear for free
    copy_min_words: int = 3  # shorter history titles are not checked (too many false hits)
    repeat_weight: float = 1.5  # per extra repeat of a content word beyond the original's
    repeat_tolerance: int = 1
    keyword_weight: float = 1.0  # per history-only word beyond the tolerance (needs the ad)
    keyword_tolerance: int = 0
    length_weight: float = 1.0  # per 10 characters over the limit
    max_chars: int = 150
    max_added_chars: int = 40

    def __post_init__(self) -> None:
        for name in ("copy_weight", "repeat_weight", "keyword_weight", "length_weight"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"GamingConfig.{name} must be >= 0 (a penalty), got {getattr(self, name)}; "
                    "set it to 0 to switch that penalty off"
                )
        if not 0 <= self.copy_tolerance < 1:
            raise ValueError(f"GamingConfig.copy_tolerance must be in [0, 1), got {self.copy_tolerance}")
        if self.max_chars < 1 or self.max_added_chars < 0:
            raise ValueError(
                "GamingConfig.max_chars must be >= 1 and max_added_chars >= 0; "
                f"got {self.max_chars} and {self.max_added_chars}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def words(text: str) -> list[str]:
    """Lower-cased content words with a crude plural fold ('pens' -> 'pen'), stopwords dropped."""
    out = []
    for w in _WORD.findall(text.lower()):
        if w in STOPWORDS:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


def _containment(part: set[str], whole: set[str]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _extra_repeats(tokens: list[str]) -> int:
    return sum(c - 1 for c in Counter(tokens).values() if c > 1)


def gaming_penalties(title: str, user: User, ad: Ad | None, config: GamingConfig) -> dict[str, float]:
    """Each penalty (>= 0, logit units) and their ``total``; all zero when ``config.enabled`` is False."""
    out = {"history_copy": 0.0, "repetition": 0.0, "history_keywords": 0.0, "length": 0.0}
    if not config.enabled:
        return {**out, "total": 0.0}
    t_words = words(title)
    t_set = set(t_words)
    # what the ad itself says a title may use: its title and its selling points
    ref_set = set(words(" ".join([ad.title, *ad.selling_points]))) if ad is not None else set()
    # history_copy: the worst history title, net of what the ad's title and selling points already share with it
    worst = 0.0
    for h in user.history:
        h_set = set(words(h.title))
        if len(h_set) < config.copy_min_words:
            continue
        share = _containment(h_set, t_set) - (_containment(h_set, ref_set) if ad is not None else 0.0)
        worst = max(worst, share)
    if worst > config.copy_tolerance:
        out["history_copy"] = (
            config.copy_weight * (worst - config.copy_tolerance) / (1 - config.copy_tolerance)
        )
    # repetition: keyword stuffing by repeating words
    extra = _extra_repeats(t_words) - (_extra_repeats(words(ad.title)) if ad is not None else 0)
    if extra > config.repeat_tolerance:
        out["repetition"] = config.repeat_weight * (extra - config.repeat_tolerance)
    # history_keywords: the user's words the ad never says (needs the ad's text)
    if ad is not None:
        ad_text = " ".join([ad.title, ad.description, ad.brand, *ad.selling_points])
        history_words = {w for h in user.history for w in words(h.title)}
        foreign = (t_set & history_words) - set(words(ad_text))
        if len(foreign) > config.keyword_tolerance:
            out["history_keywords"] = config.keyword_weight * (len(foreign) - config.keyword_tolerance)
    # length: over the absolute limit, or the original plus the allowed additions if that is longer
    limit = config.max_chars if ad is None else max(config.max_chars, len(ad.title) + config.max_added_chars)
    if len(title) > limit:
        out["length"] = config.length_weight * (len(title) - limit) / 10.0
    out["total"] = float(sum(out.values()))
    return out
