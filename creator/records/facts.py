"""Hard facts in product text: numbers with units, sizes, counts, model numbers, brand.

The same extractor reads the ad (to list what is grounded) and a generated title (to list what
it claims), so a claim is grounded exactly when its normalised key appears among the ad's.

    >>> [f.norm for f in extract_facts("BIC Pen, Medium Point (1.0mm), Black, 10-Count")]
    ['1 mm', '10 count']
    >>> [f.norm for f in extract_facts("HP 74 Ink (CB335WN), 200 pages")]
    ['74', 'cb335wn', '200 page']
"""

from __future__ import annotations

import re

from creator.records.types import Ad, Fact

# unit spelling -> canonical unit. Count-like units share one key so "12-Pack" == "Pack of 12".
_UNITS: dict[str, str] = {}
for canon, spellings in {
    "inch": ["in", "inch", "inches", '"', "''", "\u201d", "\u2033"],
    "ft": ["ft", "feet", "foot"],
    "mm": ["mm", "millimeter", "millimeters"],
    "cm": ["cm", "centimeter", "centimeters"],
    "m": ["meter", "meters", "metre", "metres"],
    "lb": ["lb", "lbs", "pound", "pounds"],
    "oz": ["oz", "ounce", "ounces"],
    "g": ["g", "gram", "grams"],
    "kg": ["kg", "kilogram", "kilograms"],
    "gsm": ["gsm"],
    "ml": ["ml", "milliliter", "milliliters"],
    "l": ["liter", "liters", "litre", "litres"],
    "gb": ["gb"],
    "tb": ["tb"],
    "mb": ["mb"],
    "w": ["w", "watt", "watts"],
    "v": ["v", "volt", "volts"],
    "mah": ["mah"],
    "count": ["count", "ct", "pack", "pk", "pcs", "pc", "piece", "pieces", "packs", "counts"],
    "%": ["%", "percent"],
    "year": ["year", "years", "yr", "yrs"],
    "month": ["month", "months"],
    "day": ["day", "days"],
}.items():
    for s in spellings:
        _UNITS[s] = canon

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+/\d+|\d*\.\d+|\d+"
_UNIT_ALT = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_SIZE_RE = re.compile(rf"(?<![\w.])({_NUM})\s*(?:{_UNIT_ALT})?\s*[x×X]\s*({_NUM})"
                      rf"(?:\s*(?:{_UNIT_ALT})?\s*[x×X]\s*({_NUM}))?\s*({_UNIT_ALT})?(?![a-z])", re.IGNORECASE)
_PACK_OF_RE = re.compile(rf"\b(?:pack|box|set|case) of ({_NUM})\b", re.IGNORECASE)
_QTY_RE = re.compile(rf"(?<![\w.])({_NUM})(?:\s*-\s*|\s*)({_UNIT_ALT})(?![a-z])", re.IGNORECASE)
# "500 Sheets", "2 Cartridges": a number followed by a plural noun is a quantity of that noun.
_NOUN_QTY_RE = re.compile(rf"(?<![\w.])({_NUM})[\s-]+([A-Za-z]{{2,}}s)\b")
_BARE_NUM_RE = re.compile(rf"(?<![\w.])({_NUM})(?![\w])")
_MODEL_RE = re.compile(r"(?<![\w-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w-])")
_STOP_NOUNS = {"and", "the", "for", "with", "inch", "inches", "per", "each", "from", "that", "this", "into", "plus"}


def norm_number(text: str) -> str:
    """'1,000' -> '1000', '1.0' -> '1', '08' -> '8', '3/4' stays '3/4'."""
    t = text.replace(",", "")
    if "/" in t:
        return t
    try:
        v = float(t)
    except ValueError:
        return t
    return str(int(v)) if v == int(v) else f"{v:g}"


def _singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("es") and w[:-2].endswith(("x", "ch", "sh", "ss")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def extract_facts(text: str, *, brand: str = "") -> list[Fact]:
    """All facts in ``text`` in reading order (plus ``brand`` when given). Duplicates removed."""
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    def add(kind: str, span: tuple[int, int], norm: str) -> None:
        taken.append(span)
        facts.append(Fact(kind=kind, text=text[span[0]:span[1]], norm=norm))

    for m in _SIZE_RE.finditer(text):
        nums = [norm_number(g) for g in m.groups()[:3] if g]
        unit = _UNITS.get((m.group(4) or "").lower(), "")
        add("size", m.span(), "x".join(nums) + (f" {unit}" if unit else ""))
    for m in _PACK_OF_RE.finditer(text):
        if free(*m.span()):
            add("count", m.span(), f"{norm_number(m.group(1))} count")
    for m in _QTY_RE.finditer(text):
        if free(*m.span()):
            unit = _UNITS[m.group(2).lower()]
            add("count" if unit == "count" else "quantity", m.span(), f"{norm_number(m.group(1))} {unit}")
    for m in _NOUN_QTY_RE.finditer(text):
        if free(*m.span()) and m.group(2).lower() not in _STOP_NOUNS:
            add("quantity", m.span(), f"{norm_number(m.group(1))} {_singular(m.group(2))}")
    for m in _MODEL_RE.finditer(text):
        if free(*m.span()) and len(m.group(0)) >= 3:
            add("model_number", m.span(), m.group(0).lower().replace("-", ""))
    for m in _BARE_NUM_RE.finditer(text):
        if free(*m.span()):
            add("quantity", m.span(), norm_number(m.group(1)))
    facts.sort(key=lambda f: text.find(f.text))
    if brand and brand.strip():
        facts.append(Fact(kind="brand", text=brand.strip(), norm=brand.strip().lower()))
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in facts:
        if (f.kind, f.norm) not in seen:
            seen.add((f.kind, f.norm))
            unique.append(f)
    return unique


def numbers_in(norm: str) -> list[str]:
    """The numbers inside a fact key: '8.5x11 inch' -> ['8.5', '11']."""
    return re.findall(r"\d+/\d+|\d*\.\d+|\d+", norm)


def ad_facts(ad: Ad, *, include_description: bool = False) -> list[Fact]:
    """Facts grounded by an ad: its title, selling points (and description if asked) and brand."""
    parts = [ad.title, *ad.selling_points]
    if include_description:
        parts.append(ad.description)
    facts: list[Fact] = []
    seen: set[tuple[str, str]] = set()
    for part in parts:
        for f in extract_facts(part):
            if (f.kind, f.norm) not in seen:
                seen.add((f.kind, f.norm))
                facts.append(f)
    if ad.brand.strip():
        facts.append(Fact(kind="brand", text=ad.brand.strip(), norm=ad.brand.strip().lower()))
    return facts
