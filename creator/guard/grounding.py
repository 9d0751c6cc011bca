"""Rule-based grounding of a title in its ad: numbers, units, model numbers, brands and claims.

The default fact checker of ``creator.guard.check`` (see its docstring for the rules). Both sides go
through ``creator.records.facts.extract_facts``, so a claim is grounded exactly when its normalised key is
among the ad's; where keys differ, numbers and units decide.

    >>> from creator.records.types import Ad
    >>> ad = Ad(ad_id="1", title="HP 74 Black Ink Cartridge (CB335WN)", brand="HP")
    >>> [f.rule for f in RuleFactChecker(["HP", "Canon"]).check("Canon 74XL Ink, 2-Pack", ad)]
    ['ungrounded_model_number', 'ungrounded_number', 'wrong_brand']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from creator.records.facts import _UNITS, _singular, extract_facts, norm_number, numbers_in
from creator.records.types import Ad, GuardFailure

_CANON_UNITS = frozenset(_UNITS.values())
_NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12", "fifteen": "15", "twenty": "20",
    "fifty": "50", "hundred": "100", "thousand": "1000",
}
_NUMBER_WORD_RE = re.compile(r"(?<![\w-])(" + "|".join(_NUMBER_WORDS) + r")(?![\w-])", re.IGNORECASE)
_DIGITS_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\d+/\d+")
# A number and the words after it, up to three, that it may count: "8 colors", "8-color", "8 colored",
# "pack of 8 assorted colors". Stops at punctuation, another number or a word that starts a new phrase.
_COUNTED_RE = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)((?:(?:\s*-\s*|\s+)[A-Za-z][A-Za-z']*){1,3})")
_PHRASE_BREAKS = {"and", "or", "with", "in", "for", "plus", "per", "each", "x", "to", "from", "by", "on", "at",
                  "than", "up", "but", "vs"}
_SPELLINGS = {"colour": "color", "flavour": "flavor", "odour": "odor", "favour": "favor", "grey": "gray",
              "metre": "meter", "litre": "liter", "centre": "center", "fibre": "fiber"}

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


def noun_stem(word: str) -> str:
    """One key for the spellings of a counted noun: 'Colors', 'colours', 'colored', 'Color' -> 'color'."""
    w = _singular(word.lower().strip("'"))
    w = _SPELLINGS.get(w, w)
    if w.endswith("ed") and len(w) > 4:  # "colored" -> "color", "lined" stays
        w = _SPELLINGS.get(w[:-2], w[:-2])
    return w


def _counted_nouns(text: str) -> dict[str, set[str]]:
    """number -> stems of the words that follow it (up to three, within one phrase) in ``text``."""
    out: dict[str, set[str]] = {}
    for m in _COUNTED_RE.finditer(text):
        stems = out.setdefault(norm_number(m.group(1)), set())
        for word in re.findall(r"[A-Za-z][A-Za-z']*", m.group(2)):
            if word.lower() in _PHRASE_BREAKS:
                break
            stems.add(noun_stem(word))
    return out


def _unit_of(norm: str) -> str:
    """The unit word of a fact key: '0.7 mm' -> 'mm', '4x6 inch' -> 'inch', '74 ink' -> 'ink', '12' -> ''."""
    parts = norm.split(" ", 1)
    return parts[1] if len(parts) == 2 else ""


@dataclass
class _AdEvidence:
    """What an ad grounds, precomputed once per ad: fact keys, numbers (with their units), tokens, text."""

    keys: set[str]
    units_by_number: dict[str, set[str]]  # number -> canonical units it appears with ("" = bare or noun)
    nouns_by_number: dict[str, set[str]]  # number -> stems of the nouns it counts ("8 colors" -> {"color"})
    product: str  # stem of the title's head noun ("Permanent Markers, Fine Point, 12 Count" -> "marker")
    tokens: set[str]  # squashed alphanumeric tokens (model numbers match these)
    flat_text: str  # lower-case, hyphens as spaces, for claims
    name_keys: set[str]  # squashed word runs of the ad text, for brands

    @classmethod
    def of(cls, ad: Ad, include_description: bool) -> _AdEvidence:
        parts = [ad.title, *ad.selling_points] + ([ad.description] if include_description else [])
        keys: set[str] = {f.norm for f in ad.facts}
        units: dict[str, set[str]] = {}
        nouns: dict[str, set[str]] = {}
        for fact in ad.facts:
            cls._note(units, fact.norm)
        for part in parts:
            for n, stems in _counted_nouns(part).items():
                nouns.setdefault(n, set()).update(stems)
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
        head = re.findall(r"[A-Za-z][A-Za-z']*", re.sub(r"\([^)]*\)", " ", ad.title.split(",")[0]))
        return cls(keys=keys, units_by_number=units, nouns_by_number=nouns, product=noun_stem(head[-1]) if head else "",
                   tokens=tokens, flat_text=f" {_flat(text)} ", name_keys=_name_keys(text))

    @staticmethod
    def _note(units: dict[str, set[str]], norm: str) -> None:
        unit = _unit_of(norm)
        canon = unit if unit in _CANON_UNITS else ""
        for n in numbers_in(norm):
            units.setdefault(n, set()).add(canon)

    def mentions(self, phrase: str) -> bool:
        return f" {_flat(phrase)} " in self.flat_text


def unstated_claims(ad: Ad, *, include_description: bool = True) -> list[str]:
    """The ``CLAIM_TERMS`` (flattened: lower-case, hyphens as spaces) that ``ad`` never states: the claims the
    guard's ``ungrounded_claim`` rule rejects in a title of this ad."""
    ev = _AdEvidence.of(ad, include_description)
    return [_flat(t) for t in CLAIM_TERMS if not ev.mentions(t)]


def flat_words(text: str) -> list[str]:
    """``text`` as the claim rule reads it: lower-case words, punctuation and hyphens as separators."""
    return _flat(text).split()


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
            counted = re.fullmatch(r"(\d+)\s*-\s*([A-Za-z]{3,})", text)  # "8-Color": a count, not a model
            if counted:
                return RuleFactChecker._check_counted(text, counted.group(1), counted.group(2), ev)
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
        if not unit:  # a bare number: grounded by the number alone
            return []
        if unit not in _CANON_UNITS:  # a noun-quantity ("8 colors"): the ad must count the same noun
            return RuleFactChecker._check_counted(text, nums[0], unit, ev)
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

    @staticmethod
    def _check_counted(text: str, number: str, noun: str, ev: _AdEvidence) -> list[GuardFailure]:
        """'8 colors' is grounded by '8 colors', '8 colours', '8-color', '8 colored', 'pack of 8 (assorted)
        colors' in the ad, not by an 8 somewhere and colors somewhere else; a count of the product itself
        ('12 Markers') also by the ad's count ('12 Count', '12-Pack', 'Pack of 12') of that product."""
        stem = noun_stem(noun)
        if stem in ev.nouns_by_number.get(number, set()):
            return []
        if stem == ev.product and "count" in ev.units_by_number.get(number, set()):
            return []  # "12 Markers" for "Permanent Markers, ..., 12 Count": a count is of the product
        if number not in ev.units_by_number and number not in ev.nouns_by_number:
            return [GuardFailure("ungrounded_number", text, f"{text!r} states {number}, which the ad never states")]
        counts = sorted(ev.nouns_by_number.get(number, set()))
        stated = f"before {', '.join(counts[:4])}" if counts else "alone"
        return [GuardFailure("changed_unit", text,
                             f"{text!r} counts {number} {noun}, but the ad states {number} only {stated}")]

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
