"""The guard: hard constraints and factual grounding of a generated title against its ad.

Used by the CoT data pipeline (to filter teacher titles), by serving (every generated title) and
by evaluation (factuality and compliance rates). A title passes only if every rule passes; the
verdict lists each failure with the rule, the offending span and a sentence a person can act on.

Grounding reuses ``creator.records.facts.extract_facts`` on both sides, so a claim is grounded exactly when
its normalised key appears among the ad's (title, selling points, facts and, by default, the
description). Where keys differ, numbers decide:

* a number the ad never states -> ``ungrounded_number``;
* a number with a known unit (mm, inch, oz, %, year...) that the ad states only with another unit,
  or only bare -> ``changed_unit``;
* a noun-quantity ("8 colors", "12 pens", "8-color") needs the ad to count the same noun with the same
  number ("8 colors", "8 colours", "8-color", "8 colored", "pack of 8 assorted colors"), not an 8 somewhere
  and colors elsewhere -> ``changed_unit`` (``ungrounded_number`` when the ad never states the number);
  a bare number is grounded by the number alone;
* a model-number-like token (letters and digits: "CB335WN", "TN-310C") the ad lacks ->
  ``ungrounded_model_number``;
* any known brand (the catalog's brands, given at construction) that is not the ad's and that the
  ad never names -> ``wrong_brand``;
* a product claim from ``CLAIM_TERMS`` ("waterproof", "lifetime warranty", "#1") that the ad never
  makes -> ``ungrounded_claim``.

With a ``fluency`` gate (``creator.modeling.fluency.FluencyGate``, an LM score; off by default) a title whose
mean NLL per token under the reference LM (or its excess over the catalog's word frequencies) is above the
catalog-calibrated threshold fails with ``disfluent``; the NLL is in ``verdict.scores["fluency_nll"]`` either way.

    >>> from creator.records.types import Ad
    >>> ad = Ad(ad_id="1", title="Pilot G2 Gel Pens, 0.7mm, Black, 12-Pack", brand="Pilot")
    >>> guard = Guard(known_brands=["Pilot", "BIC"])
    >>> guard.check("Pilot G2 Gel Pens, 0.7mm, 12-Pack for Your Journaling", ad).passed
    True
    >>> [f.rule for f in guard.check("BIC Gel Pens, 0.7 inch, 24-Pack", ad).failures]
    ['changed_unit', 'ungrounded_number', 'wrong_brand']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from creator.channels.presets import CHANNELS, DEFAULT_CHANNEL, Channel, get_channel
from creator.guard.banned_attributes import BANNED_CATEGORIES, find_banned_attributes
from creator.guard.editorial import EDITORIAL_RULES, META_RULES, google_editorial, meta_personal_attributes
from creator.guard.grounding import CLAIM_TERMS, RuleFactChecker, _squash, known_brands_from_ads
from creator.records.types import Ad, GuardFailure, GuardVerdict


class FluencyCheck(Protocol):
    """What the guard needs of a fluency gate (``creator.modeling.fluency.FluencyGate``): scores and a verdict."""

    def prefetch(self, texts: list[str]) -> None: ...

    def measure(self, text: str) -> tuple[float, dict[str, float]]: ...

    def passes(self, value: float) -> bool: ...

    def reason(self, value: float) -> str: ...

__all__ = ["CLAIM_TERMS", "RULES", "ChainedFactChecker", "FactChecker", "Guard", "GuardConfig",
           "NLIFactChecker", "RuleFactChecker", "known_brands_from_ads", "topic_kept",
           "topic_words"]

logger = logging.getLogger(__name__)

RULES = (
    "empty", "off_topic", "too_long", "too_many_words", "too_many_added_chars", "ungrounded_number", "changed_unit",
    "ungrounded_model_number", "wrong_brand", "ungrounded_claim", "banned_attribute", "banned_word",
    "unchanged", *EDITORIAL_RULES, *META_RULES, "disfluent",
)


@dataclass
class GuardConfig:
    """Hard limits on a title. ``None`` disables a limit; ``max_added_chars`` is measured against the
    original title (the ad's title unless ``original_title`` is given to ``Guard.check``).

    ``channel`` (``creator.channels.presets``) adds the platform's rules and counts length as the platform does;
    ``GuardConfig.for_channel(name)`` also takes ``max_chars`` from it. ``generic`` is the guard as it was."""

    max_chars: int = 120
    max_words: int | None = None
    max_added_chars: int | None = None
    banned_words: list[str] = field(default_factory=list)
    check_banned_attributes: bool = True
    flag_unchanged: bool = False
    banned_categories: list[str] = field(default_factory=lambda: list(BANNED_CATEGORIES))
    ground_in_description: bool = True
    # A title must read as words ("-.," is not a title) and stay about the ad's product: it keeps at
    # least this share of the ad title's content words (brand included), and at least one of them.
    min_words: int = 2
    min_title_overlap: float = 0.2
    channel: str = DEFAULT_CHANNEL

    @classmethod
    def for_channel(cls, channel: str | Channel, **overrides: object) -> GuardConfig:
        """The guard config of a channel preset: its ``max_chars`` and rules; ``overrides`` set any field."""
        ch = get_channel(channel)
        return cls(**{"max_chars": ch.max_chars, "channel": ch.name, **overrides})  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            get_channel(self.channel)  # raises the one-line error that lists the presets
        if self.max_chars < 1:
            raise ValueError(f"GuardConfig.max_chars must be >= 1, got {self.max_chars}; use e.g. 120")
        if self.max_words is not None and self.max_words < 1:
            raise ValueError(
                f"GuardConfig.max_words must be >= 1 or None, got {self.max_words}; use None to disable"
            )
        if self.max_added_chars is not None and self.max_added_chars < 0:
            raise ValueError(f"GuardConfig.max_added_chars must be >= 0 or None, got {self.max_added_chars}")
        unknown = [c for c in self.banned_categories if c not in BANNED_CATEGORIES]
        if unknown:
            raise ValueError(
                f"GuardConfig.banned_categories has unknown {unknown}; choose from {BANNED_CATEGORIES}"
            )
        if self.min_words < 0:
            raise ValueError(f"GuardConfig.min_words must be >= 0, got {self.min_words}; use 0 to disable")
        if not 0.0 <= self.min_title_overlap <= 1.0:
            raise ValueError(
                f"GuardConfig.min_title_overlap must be in [0, 1], got {self.min_title_overlap}; use 0 to disable"
            )
        if not all(isinstance(w, str) and w.strip() for w in self.banned_words):
            raise ValueError("GuardConfig.banned_words must be non-empty strings; drop the empty entries")


class FactChecker(Protocol):
    """Anything that lists the unsupported claims of a title about an ad."""

    name: str

    def check(self, title: str, ad: Ad) -> list[GuardFailure]: ...


class NLIFactChecker:
    """A model-based checker: ``entail(premise, hypothesis) -> probability`` from any NLI-style model.

    The premise is the ad text (title, selling points, description); a title whose entailment
    probability is below ``threshold`` fails with ``ungrounded_claim``. Pair it with the rules via
    ``ChainedFactChecker`` to keep the exact number/brand checks.
    """

    def __init__(
        self, entail: Callable[[str, str], float], *, threshold: float = 0.5, name: str = "nli"
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"NLIFactChecker.threshold must be in [0, 1], got {threshold}")
        self.entail = entail
        self.threshold = threshold
        self.name = name

    def check(self, title: str, ad: Ad) -> list[GuardFailure]:
        premise = " ".join([ad.title, *ad.selling_points, ad.description]).strip()
        p = float(self.entail(premise, title))
        if p < self.threshold:
            return [
                GuardFailure(
                    "ungrounded_claim",
                    title,
                    f"{self.name}: the ad supports this title with probability {p:.2f} "
                    f"< {self.threshold:.2f}",
                )
            ]
        return []


class ChainedFactChecker:
    """Runs several checkers and lists every failure (e.g. rules first, then a model)."""

    def __init__(self, *checkers: FactChecker) -> None:
        if not checkers:
            raise ValueError("ChainedFactChecker needs at least one checker, e.g. RuleFactChecker()")
        self.checkers = checkers
        self.name = "+".join(c.name for c in checkers)

    def check(self, title: str, ad: Ad) -> list[GuardFailure]:
        return [f for c in self.checkers for f in c.check(title, ad)]



_WORD_RE = re.compile(r"[^\W\d_]{2,}")
_STOP_WORDS = frozenset(
    "the and for with from your you our this that are was were has have its his her their them into onto "
    "per each all any can will not but more most very just only also than then too".split()
)


def _content_words(text: str) -> set[str]:
    """Lower-cased words of 3+ letters that carry meaning ('pens' and 'pen' count as one)."""
    words = {w.lower() for w in _WORD_RE.findall(text) if len(w) >= 3}
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words} - _STOP_WORDS


def topic_words(ad: Ad) -> set[str]:
    """What the ``off_topic`` rule counts: the content words of the ad's title and the words of its brand."""
    return _content_words(ad.title) | {w.lower() for w in _WORD_RE.findall(ad.brand)}


def topic_kept(text: str, topic: set[str] | frozenset[str]) -> set[str]:
    """The words of ``topic`` (``topic_words(ad)``) that ``text`` keeps, as the ``off_topic`` rule counts them.

    Words are matched one whitespace-separated word at a time, so the kept set of a title is the union of
    the kept sets of its words (grounded decoding relies on that)."""
    return set(topic) & (_content_words(text) | {w.lower() for w in _WORD_RE.findall(text)})


class Guard:
    """Hard constraints + a fact checker. ``check`` never raises on odd titles; it returns a verdict."""

    def __init__(
        self,
        config: GuardConfig | None = None,
        fact_checker: FactChecker | None = None,
        *,
        known_brands: Iterable[str] = (),
        fluency: FluencyCheck | None = None,
    ) -> None:
        self.config = config or GuardConfig()
        self.fluency = fluency
        self.channel = get_channel(self.config.channel)
        self.fact_checker = fact_checker or RuleFactChecker(
            known_brands, include_description=self.config.ground_in_description
        )
        words = [w.strip() for w in self.config.banned_words]
        self._banned_word_re = (
            re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in words) + r")(?![\w-])", re.IGNORECASE)
            if words
            else None
        )

    def prefetch(self, titles: Iterable[str]) -> None:
        """Score many titles for the fluency gate in batches (a no-op without one); ``check`` then reads the cache."""
        if self.fluency is not None:
            self.fluency.prefetch(list(titles))

    def check(self, title: str, ad: Ad, *, original_title: str | None = None) -> GuardVerdict:
        original = ad.title if original_title is None else original_title
        text = (title or "").strip()
        if not text:
            return GuardVerdict(
                [GuardFailure("empty", "", "the title is empty")], checker=self.fact_checker.name
            )
        failures = self._shape_failures(text, ad, original)
        failures += self._word_failures(text, ad)
        failures += self._channel_failures(title, ad)
        failures += self._fact_failures(text, ad)
        scores: dict[str, float] = {}
        if self.fluency is not None:
            value, scores = self.fluency.measure(text)
            # the ad's own title is the gate's calibration reference: scored, never rejected by it
            if not self.fluency.passes(value) and _squash(text) != _squash(original):
                failures.append(GuardFailure("disfluent", text, self.fluency.reason(value)))
        return GuardVerdict(failures=failures, checker=self.fact_checker.name, scores=scores)

    def _shape_failures(self, text: str, ad: Ad, original: str) -> list[GuardFailure]:
        """Too few words, off the ad's topic, too long for the channel, too many words or added characters,
        unchanged."""
        cfg = self.config
        failures: list[GuardFailure] = []
        n_letter_words = len(_WORD_RE.findall(text))
        if n_letter_words < cfg.min_words:
            failures.append(
                GuardFailure("empty", text, f"the title has {n_letter_words} words < min_words {cfg.min_words}")
            )
        ad_words = topic_words(ad)
        if ad_words and cfg.min_title_overlap > 0:
            kept = topic_kept(text, ad_words)
            share = len(kept) / len(ad_words)
            if not kept or share < cfg.min_title_overlap:
                failures.append(
                    GuardFailure(
                        "off_topic",
                        text,
                        f"the title keeps {len(kept)} of the ad title's {len(ad_words)} content words "
                        f"({share:.0%} < min_title_overlap {cfg.min_title_overlap:.0%}): it may describe "
                        "another product",
                    )
                )
        width = self.channel.width(text)
        if width > cfg.max_chars:
            failures.append(
                GuardFailure(
                    "too_long", _overflow(text, cfg.max_chars, self.channel),
                    f"{width} characters > max_chars {cfg.max_chars}"
                    + (f" ({self.channel.name}); shorten it" if self.channel.name != DEFAULT_CHANNEL else ""),
                )
            )
        n_words = len(text.split())
        if cfg.max_words is not None and n_words > cfg.max_words:
            failures.append(
                GuardFailure(
                    "too_many_words",
                    " ".join(text.split()[cfg.max_words :]),
                    f"{n_words} words > max_words {cfg.max_words}",
                )
            )
        if cfg.max_added_chars is not None and len(text) - len(original.strip()) > cfg.max_added_chars:
            failures.append(
                GuardFailure(
                    "too_many_added_chars",
                    text,
                    f"{len(text) - len(original.strip())} characters added to the original "
                    f"title > max_added_chars {cfg.max_added_chars}",
                )
            )
        if cfg.flag_unchanged and _squash(text) == _squash(original):
            failures.append(GuardFailure("unchanged", text, "the title is the original title unchanged"))
        return failures

    def _word_failures(self, text: str, ad: Ad) -> list[GuardFailure]:
        """Banned words, and personal attributes of the reader the ad's own text does not state."""
        cfg = self.config
        failures: list[GuardFailure] = []
        if self._banned_word_re is not None:
            for m in self._banned_word_re.finditer(text):
                failures.append(
                    GuardFailure("banned_word", m.group(0), f"{m.group(0)!r} is on the banned-word list")
                )
        if cfg.check_banned_attributes:
            exempt = " ".join([ad.title, *ad.selling_points, ad.description])
            for hit in find_banned_attributes(
                text, exempt_text=exempt, categories=tuple(cfg.banned_categories)
            ):
                failures.append(
                    GuardFailure(
                        "banned_attribute", hit.span, f"{hit.span!r} refers to the reader's {hit.category}"
                    )
                )
        return failures

    def _channel_failures(self, title: str, ad: Ad) -> list[GuardFailure]:
        """The platform's editorial rules (Google Ads editorial, Meta personal attributes)."""
        failures: list[GuardFailure] = []
        if self.channel.editorial or self.channel.meta_attributes:
            ad_text = " ".join([ad.title, ad.brand, *ad.selling_points, ad.description])
            raw = (title or "").strip()  # editorial rules see the title as written (doubled spaces included)
            if self.channel.editorial:
                failures.extend(google_editorial(raw, ad_text, max_exclamations=self.channel.max_exclamations))
            if self.channel.meta_attributes:
                failures.extend(meta_personal_attributes(raw, ad_text))
        return failures

    def _fact_failures(self, text: str, ad: Ad) -> list[GuardFailure]:
        """The fact checker's failures; a checker that crashes fails the title, it never passes it silently."""
        try:
            return list(self.fact_checker.check(text, ad))
        except Exception as exc:  # a model-based checker failing must not pass the title silently
            logger.warning("fact checker %s failed on ad %s: %s", self.fact_checker.name, ad.ad_id, exc)
            return [
                GuardFailure(
                    "ungrounded_claim",
                    text,
                    f"fact checker {self.fact_checker.name} failed ({type(exc).__name__}); "
                    "the title is not verified",
                )
            ]


def _overflow(text: str, max_chars: int, channel: Channel) -> str:
    """The part of ``text`` past the channel's budget, as the platform counts it."""
    used = 0
    for i, ch in enumerate(text):
        used += channel.width(ch)
        if used > max_chars:
            return text[i:]
    return ""
