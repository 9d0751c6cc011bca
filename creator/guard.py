"""The guard: hard constraints and factual grounding of a generated title against its ad.

Used by the CoT data pipeline (to filter teacher titles), by serving (every generated title) and
by evaluation (factuality and compliance rates). A title passes only if every rule passes; the
verdict lists each failure with the rule, the offending span and a sentence a person can act on.

Grounding reuses ``creator.facts.extract_facts`` on both sides, so a claim is grounded exactly when
its normalised key appears among the ad's (title, selling points, facts and, by default, the
description). Where keys differ, numbers decide:

* a number the ad never states -> ``ungrounded_number``;
* a number with a known unit (mm, inch, oz, %, year...) that the ad states only with another unit,
  or only bare -> ``changed_unit``;
* a noun-quantity ("74 ink", "12 pens") has no unit to check, so it is grounded by its number alone;
* a model-number-like token (letters and digits: "CB335WN", "TN-310C") the ad lacks ->
  ``ungrounded_model_number``;
* any known brand (the catalog's brands, given at construction) that is not the ad's and that the
  ad never names -> ``wrong_brand``;
* a product claim from ``CLAIM_TERMS`` ("waterproof", "lifetime warranty", "#1") that the ad never
  makes -> ``ungrounded_claim``.

    >>> from creator.types import Ad
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

from creator.banned_attributes import BANNED_CATEGORIES, find_banned_attributes
from creator.facts import _UNITS, extract_facts, norm_number, numbers_in
from creator.types import Ad, GuardFailure, GuardVerdict

logger = logging.getLogger(__name__)

RULES = (
    "empty", "too_long", "too_many_words", "too_many_added_chars", "ungrounded_number", "changed_unit",
    "ungrounded_model_number", "wrong_brand", "ungrounded_claim", "banned_attribute", "banned_word",
    "unchanged",
)

_CANON_UNITS = frozenset(_UNITS.values())
_NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12", "fifteen": "15", "twenty": "20",
    "fifty": "50", "hundred": "100", "thousand": "1000",
}
_NUMBER_WORD_RE = re.compile(r"(?<![\w-])(" + "|".join(_NUMBER_WORDS) + r")(?![\w-])", re.IGNORECASE)
_DIGITS_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\d+/\d+")

# Product claims a title may repeat but never invent. Matched on word boundaries after lower-casing
# and turning hyphens into spaces on both sides ("Water-Resistant" == "water resistant").
CLAIM_TERMS: tuple[str, ...] = (
    "waterproof", "water resistant", "smudge proof", "smear proof", "fade resistant", "fade proof",
    "acid free", "archival", "non toxic", "nontoxic", "bpa free", "eco friendly", "recycled", "recyclable",
    "biodegradable", "compostable", "organic", "vegan", "refillable", "rechargeable", "wireless",
    "bluetooth", "erasable", "washable", "permanent", "lifetime", "warranty", "guarantee", "guaranteed",
    "certified", "approved", "patented", "award winning", "best selling", "bestseller", "best seller", "#1",
    "number one", "top rated", "free shipping", "for free", "free gift", "free trial", "sale", "discount",
    "cheapest", "lowest price", "made in usa", "made in the usa", "handmade", "genuine", "authentic",
    "official", "oem", "ergonomic", "antimicrobial", "hypoallergenic", "fsc", "energy star", "unbreakable",
    "indestructible", "fireproof", "fire resistant", "tear resistant", "scratch resistant", "shockproof",
    "shatterproof", "long lasting", "quick drying", "fast drying", "quick dry", "instant dry", "odorless",
    "low odor", "latex free", "gluten free", "fda", "clinically", "dermatologist", "luxury", "premium",
)
_CLAIM_RE = re.compile(
    r"(?<![\w#])(" + "|".join(re.escape(t) for t in sorted(CLAIM_TERMS, key=len, reverse=True)) + r")(?![\w])"
)


@dataclass
class GuardConfig:
    """Hard limits on a title. ``None`` disables a limit; ``max_added_chars`` is measured against the
    original title (the ad's title unless ``original_title`` is given to ``Guard.check``)."""

    max_chars: int = 120
    max_words: int | None = None
    max_added_chars: int | None = None
    banned_words: list[str] = field(default_factory=list)
    check_banned_attributes: bool = True
    flag_unchanged: bool = False
    banned_categories: list[str] = field(default_factory=lambda: list(BANNED_CATEGORIES))
    ground_in_description: bool = True

    def __post_init__(self) -> None:
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
        if not all(isinstance(w, str) and w.strip() for w in self.banned_words):
            raise ValueError("GuardConfig.banned_words must be non-empty strings; drop the empty entries")


class FactChecker(Protocol):
    """Anything that lists the unsupported claims of a title about an ad."""

    name: str

    def check(self, title: str, ad: Ad) -> list[GuardFailure]: ...


def _flat(text: str) -> str:
    """Lower-case words separated by single spaces: punctuation and hyphens become spaces."""
    return re.sub(r"[^a-z0-9#%&+]+", " ", text.lower().replace("'", "")).strip()


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _name_keys(text: str, max_words: int = 6) -> set[str]:
    """Every run of 1..max_words words of ``text``, squashed ('Post-it' and 'Postit' -> 'postit')."""
    words = _flat(text).split()
    n = len(words)
    return {"".join(words[i:j]) for i in range(n) for j in range(i + 1, min(i + max_words, n) + 1)}


def _unit_of(norm: str) -> str:
    """The unit word of a fact key: '0.7 mm' -> 'mm', '4x6 inch' -> 'inch', '74 ink' -> 'ink', '12' -> ''."""
    parts = norm.split(" ", 1)
    return parts[1] if len(parts) == 2 else ""


@dataclass
class _AdEvidence:
    """What an ad grounds, precomputed once per ad: fact keys, numbers (with their units), tokens, text."""

    keys: set[str]
    units_by_number: dict[str, set[str]]  # number -> canonical units it appears with ("" = bare or noun)
    tokens: set[str]  # squashed alphanumeric tokens (model numbers match these)
    flat_text: str  # lower-case, hyphens as spaces, for claims
    name_keys: set[str]  # squashed word runs of the ad text, for brands

    @classmethod
    def of(cls, ad: Ad, include_description: bool) -> _AdEvidence:
        parts = [ad.title, *ad.selling_points] + ([ad.description] if include_description else [])
        keys: set[str] = {f.norm for f in ad.facts}
        units: dict[str, set[str]] = {}
        for fact in ad.facts:
            cls._note(units, fact.norm)
        for part in parts:
            for fact in extract_facts(part):
                keys.add(fact.norm)
                cls._note(units, fact.norm)
            for raw in _DIGITS_RE.findall(part):  # digits inside model numbers count as stated numbers
                units.setdefault(norm_number(raw), set()).add("")
            for word in _NUMBER_WORD_RE.findall(part):
                units.setdefault(_NUMBER_WORDS[word.lower()], set()).add("")
        text = " ".join(parts + [ad.brand])
        tokens = {_squash(t) for t in re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", text)}
        tokens |= {_squash(f.norm) for f in ad.facts if f.kind == "model_number"}
        return cls(keys=keys, units_by_number=units, tokens=tokens, flat_text=f" {_flat(text)} ",
                   name_keys=_name_keys(text))

    @staticmethod
    def _note(units: dict[str, set[str]], norm: str) -> None:
        unit = _unit_of(norm)
        canon = unit if unit in _CANON_UNITS else ""
        for n in numbers_in(norm):
            units.setdefault(n, set()).add(canon)

    def mentions(self, phrase: str) -> bool:
        return f" {_flat(phrase)} " in self.flat_text


class RuleFactChecker:
    """Rule-based grounding of numbers, units, model numbers, brands and product claims (see module doc).

    ``known_brands``: the catalog's brands; any of them in a title for another brand's ad is
    ``wrong_brand`` unless the ad itself names it ("compatible with HP printers").
    """

    name = "rules"

    def __init__(
        self,
        known_brands: Iterable[str] = (),
        *,
        include_description: bool = True,
        claim_terms: Iterable[str] | None = None,
    ) -> None:
        self.include_description = include_description
        brands = {b.strip() for b in known_brands if b and len(_squash(b)) >= 2 and not b.strip().isdigit()}
        # squashed brand name -> brand; a title "names" a brand when one of its word runs squashes to it
        self._brands = {_squash(b): b for b in sorted(brands, key=len)}
        self._claim_re = (
            _CLAIM_RE
            if claim_terms is None
            else re.compile(
                r"(?<![\w#])(" + "|".join(re.escape(_flat(t)) for t in claim_terms) + r")(?![\w])"
            )
        )
        self._cache: dict[int, tuple[Ad, _AdEvidence]] = {}

    def evidence(self, ad: Ad) -> _AdEvidence:
        hit = self._cache.get(id(ad))
        if hit is None or hit[0] is not ad:
            if len(self._cache) > 4096:
                self._cache.clear()
            hit = (ad, _AdEvidence.of(ad, self.include_description))
            self._cache[id(ad)] = hit
        return hit[1]

    def check(self, title: str, ad: Ad) -> list[GuardFailure]:
        ev = self.evidence(ad)
        failures: list[GuardFailure] = []
        for fact in extract_facts(title):
            failures.extend(self._check_fact(fact.kind, fact.text, fact.norm, ev))
        for m in _NUMBER_WORD_RE.finditer(title):
            num = _NUMBER_WORDS[m.group(1).lower()]
            if num not in ev.units_by_number:
                failures.append(
                    GuardFailure(
                        "ungrounded_number",
                        m.group(0),
                        f"the title says {m.group(0)!r} ({num}) but the ad never states {num}",
                    )
                )
        failures.extend(self._check_brands(title, ad, ev))
        flat_title = _flat(title)
        for m in self._claim_re.finditer(flat_title):
            if not ev.mentions(m.group(1)):
                failures.append(
                    GuardFailure(
                        "ungrounded_claim",
                        m.group(1),
                        f"the title claims {m.group(1)!r} but the ad never says so",
                    )
                )
        return failures

    @staticmethod
    def _check_fact(kind: str, text: str, norm: str, ev: _AdEvidence) -> list[GuardFailure]:
        if norm in ev.keys:
            return []
        ordinal = re.fullmatch(r"(\d+)(?:st|nd|rd|th)", norm)
        if ordinal:  # "1st", "3rd": a number, not a model number
            norm = ordinal.group(1)
        elif kind == "model_number":
            if _squash(norm) in ev.tokens:
                return []
            return [
                GuardFailure(
                    "ungrounded_model_number", text, f"model number {text!r} does not appear in the ad"
                )
            ]
        nums = numbers_in(norm)
        missing = [n for n in nums if n not in ev.units_by_number]
        if missing:
            return [
                GuardFailure(
                    "ungrounded_number",
                    text,
                    f"{text!r} states {', '.join(missing)}, which the ad never states",
                )
            ]
        unit = _unit_of(norm)
        if unit not in _CANON_UNITS:  # noun-quantity or bare number: grounded by its numbers alone
            return []
        for n in nums:
            seen = ev.units_by_number[n]
            ok = unit in seen or (unit == "count" and "" in seen)
            if not ok:
                stated = ", ".join(sorted(u or "a bare number" for u in seen))
                return [
                    GuardFailure(
                        "changed_unit",
                        text,
                        f"{text!r} gives {n} in {unit}, but the ad states {n} only as {stated}",
                    )
                ]
        return []

    def _check_brands(self, title: str, ad: Ad, ev: _AdEvidence) -> list[GuardFailure]:
        own = _squash(ad.brand)
        failures = []
        for key in sorted(_name_keys(title) & self._brands.keys()):
            if (own and (key == own or key in own or own in key)) or key in ev.name_keys:
                continue
            brand = self._brands[key]
            failures.append(GuardFailure("wrong_brand", brand, f"the title names {brand!r}, but the ad is "
                                         f"{ad.brand or 'unbranded'} and never mentions {brand!r}"))
        return failures


def known_brands_from_ads(ads: Iterable[Ad], *, max_generic_ads: int = 2) -> list[str]:
    """The brands of a catalog that can be told apart from ordinary words, for ``wrong_brand``.

    A brand whose name appears in the titles of more than ``max_generic_ads`` ads of *other*
    brands is used as a plain word in this catalog ("Colored Pencils", "Staples", "Bold") and is
    left out: flagging it would reject honest titles.
    """
    ads = list(ads)
    brands = {_squash(a.brand): a.brand.strip() for a in ads if a.brand and _squash(a.brand)}
    used_by_others: dict[str, int] = {}
    for ad in ads:
        own = _squash(ad.brand)
        for key in _name_keys(ad.title) & brands.keys():
            if key != own:
                used_by_others[key] = used_by_others.get(key, 0) + 1
    keep = sorted(b for key, b in brands.items() if used_by_others.get(key, 0) <= max_generic_ads)
    return keep


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


class Guard:
    """Hard constraints + a fact checker. ``check`` never raises on odd titles; it returns a verdict."""

    def __init__(
        self,
        config: GuardConfig | None = None,
        fact_checker: FactChecker | None = None,
        *,
        known_brands: Iterable[str] = (),
    ) -> None:
        self.config = config or GuardConfig()
        self.fact_checker = fact_checker or RuleFactChecker(
            known_brands, include_description=self.config.ground_in_description
        )
        words = [w.strip() for w in self.config.banned_words]
        self._banned_word_re = (
            re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in words) + r")(?![\w-])", re.IGNORECASE)
            if words
            else None
        )

    def check(self, title: str, ad: Ad, *, original_title: str | None = None) -> GuardVerdict:
        cfg = self.config
        original = ad.title if original_title is None else original_title
        text = (title or "").strip()
        if not text:
            return GuardVerdict(
                [GuardFailure("empty", "", "the title is empty")], checker=self.fact_checker.name
            )
        failures: list[GuardFailure] = []
        if len(text) > cfg.max_chars:
            failures.append(
                GuardFailure(
                    "too_long", text[cfg.max_chars :], f"{len(text)} characters > max_chars {cfg.max_chars}"
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
        try:
            failures.extend(self.fact_checker.check(text, ad))
        except Exception as exc:  # a model-based checker failing must not pass the title silently
            logger.warning("fact checker %s failed on ad %s: %s", self.fact_checker.name, ad.ad_id, exc)
            failures.append(
                GuardFailure(
                    "ungrounded_claim",
                    text,
                    f"fact checker {self.fact_checker.name} failed ({type(exc).__name__}); "
                    "the title is not verified",
                )
            )
        return GuardVerdict(failures=failures, checker=self.fact_checker.name)
