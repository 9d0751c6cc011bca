"""The platforms' copy rules as named rules: Google Ads editorial, and Meta's personal attributes.

Each finder returns ``GuardFailure(rule, span, reason)`` with a reason a person can act on; the guard runs
them for the channels that need them (``creator.channels.presets``). ``ad_text`` is the ad's own text (title,
selling points, description): what the ad itself writes ("HP", "CB335WN", "Kids Scissors") is exempt.

Google Ads editorial (Google Ads policy "Editorial", "Punctuation and symbols", "Capitalization",
"Style and spelling", "Repetition", "Unavailable or unsupported phone numbers"):

    >>> [f.rule for f in google_editorial("Gel Pens!! Click here", "Pilot Gel Pens", max_exclamations=0)]
    ['exclamation', 'repeated_punctuation', 'click_here']
    >>> google_editorial("Pilot G2 Gel Pens, 12-Pack", "Pilot G2 Gel Pens, 12-Pack", max_exclamations=0)
    []

Meta personal attributes (Meta Advertising Standards, "Personal attributes"): besides the guard's eight
classes (``banned_attribute``, kept on every channel, so the tool stays stricter than Meta: it still bans
"New Yorkers", which Meta allows, because a title must not change what it may say about its reader with
the placement), family status, disability, voting status, trade-union membership, criminal record and a person's
name, as statements and as questions to the reader; "you"/"your" alone stays allowed.

    >>> [f.rule for f in meta_personal_attributes("Are you struggling with debt?", "Planner")]
    ['personal_attribute_question']
    >>> meta_personal_attributes("Need a planner for your week?", "Weekly Planner")
    []
"""

from __future__ import annotations

import re
import unicodedata

from creator.guard.banned_attributes import find_banned_attributes
from creator.records.types import GuardFailure

__all__ = ["EDITORIAL_RULES", "META_ATTRIBUTE_PATTERNS", "META_RULES", "google_editorial",
           "meta_personal_attributes"]

EDITORIAL_RULES = ("exclamation", "repeated_punctuation", "ellipsis", "emoji_or_symbol", "symbol_for_word",
                   "all_caps", "phone_number", "click_here", "double_space", "word_repetition")
META_RULES = ("personal_attribute", "personal_attribute_question")

_ELLIPSIS = re.compile(r"\.{2,}|\u2026")
_REPEATED = re.compile(r"(?<!\d)''|([^\w\s.'])\1+")  # '' after a digit is an inch mark, not repetition
# symbols Google accepts in ad text: trademark signs and the degree sign (So) besides ordinary punctuation
_ALLOWED_SYMBOLS = frozenset("\u00a9\u00ae\u2122\u00b0")
_SYMBOL_WORDS = re.compile(
    r"(?<![\w/@])(?:4\s+(?:u|you|ur|your|less|sale)|2\s+(?:go|u|you)|u|ur|b4|gr8|thx|w/o?|@\s*(?:home|work|school))"
    r"(?![\w/])", re.IGNORECASE)
_CAPS_WORD = re.compile(r"(?<![\w-])[A-Z]{2,}(?![\w-])")
_PHONE = re.compile(r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w.])"
                    r"|(?<![\w.])1-8\d\d-[A-Z0-9]{3}-[A-Z0-9]{4}(?![\w.])")
_CLICK_HERE = re.compile(r"(?<![\w-])click here(?![\w-])", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
_COMMON = frozenset("a an the and or for with of to in on by at from your you our".split())


def _is_odd_symbol(ch: str) -> bool:
    if ch in _ALLOWED_SYMBOLS:
        return False
    cat = unicodedata.category(ch)
    return cat in ("So", "Cs", "Co") or 0x1F000 <= ord(ch) <= 0x1FAFF or ch in "\u200d\ufe0f"


def google_editorial(title: str, ad_text: str, *, max_exclamations: int | None = 1) -> list[GuardFailure]:
    """Google's editorial rules on one title; ``max_exclamations`` is 0 for a headline, 1 for a description."""
    out: list[GuardFailure] = []
    bangs = title.count("!")
    if max_exclamations is not None and bangs > max_exclamations:
        where = "a headline" if max_exclamations == 0 else f"an ad ({max_exclamations} at most)"
        out.append(GuardFailure("exclamation", "!", f"{bangs} '!' in {where}; Google allows none in a headline "
                                "and one in a description: remove it"))
    for m in _REPEATED.finditer(title):
        out.append(GuardFailure("repeated_punctuation", m.group(0),
                                f"{m.group(0)!r} repeats a punctuation mark or symbol; write it once"))
    for m in _ELLIPSIS.finditer(title):
        out.append(GuardFailure("ellipsis", m.group(0), "Google rejects ellipses; end the phrase or use a comma"))
    odd = [ch for ch in dict.fromkeys(title) if _is_odd_symbol(ch)]
    if odd:
        out.append(GuardFailure("emoji_or_symbol", "".join(odd),
                                f"{''.join(odd)!r} is an emoji or non-standard symbol; use words instead"))
    for m in _SYMBOL_WORDS.finditer(title):
        if not _in_ad(m.group(0), ad_text, case=False):
            out.append(GuardFailure("symbol_for_word", m.group(0),
                                    f"{m.group(0)!r} stands in for a word; spell the word out"))
    for m in _CAPS_WORD.finditer(title):
        if not _in_ad(m.group(0), ad_text, case=True):
            out.append(GuardFailure("all_caps", m.group(0),
                                    f"{m.group(0)!r} is all capitals but the ad does not write it so; use "
                                    f"{m.group(0).capitalize()!r}"))
    for m in _PHONE.finditer(title):
        out.append(GuardFailure("phone_number", m.group(0),
                                "phone numbers belong in a call asset, not in ad text; remove it"))
    for m in _CLICK_HERE.finditer(title):
        out.append(GuardFailure("click_here", m.group(0), "'click here' is not allowed; say what the reader gets"))
    if "  " in title:
        out.append(GuardFailure("double_space", "  ", "two spaces in a row; use one"))
    out.extend(_repetition(title, ad_text))
    return out


def _in_ad(span: str, ad_text: str, *, case: bool) -> bool:
    flags = 0 if case else re.IGNORECASE
    return bool(ad_text) and re.search(r"(?<![\w-])" + re.escape(span) + r"(?![\w-])", ad_text, flags) is not None


def _repetition(title: str, ad_text: str) -> list[GuardFailure]:
    """A word written twice in a row ("Pens Pens"), or a content word three times, unless the ad does so."""
    words = [w.lower() for w in _WORD.findall(title)]
    ad_words = [w.lower() for w in _WORD.findall(ad_text)]
    ad_pairs = set(zip(ad_words, ad_words[1:], strict=False))
    out: list[GuardFailure] = []
    for a, b in zip(words, words[1:], strict=False):
        if a == b and (a, b) not in ad_pairs:
            m = re.search(rf"(?<!\w){re.escape(a)}\W+{re.escape(b)}(?!\w)", title, re.IGNORECASE)
            out.append(GuardFailure("word_repetition", m.group(0) if m else f"{a} {b}",
                                    f"{a!r} is written twice in a row; Google rejects gimmicky repetition"))
    for w in dict.fromkeys(words):
        if w not in _COMMON and words.count(w) >= 3 and ad_words.count(w) < 3:
            m = re.search(rf"(?<!\w){re.escape(w)}(?!\w)", title, re.IGNORECASE)
            out.append(GuardFailure("word_repetition", m.group(0) if m else w,
                                    f"{w!r} appears {words.count(w)} times; say it once"))
    return out


# Meta's classes beyond the guard's eight. Lower-case regex fragments, matched on word boundaries.
META_ATTRIBUTE_PATTERNS: dict[str, list[str]] = {
    "family status": [
        r"single (?:parents?|moms?|mums?|dads?|mothers?|fathers?)", r"divorced", r"divorcees?", r"separated",
        r"married", r"newlyweds?", r"widow(?:ed|ers?|s)?", r"empty[- ]nesters?", r"childless",
        r"stay[- ]at[- ]home (?:parents?|moms?|dads?)", r"new parents?", r"parents?", r"expecting",
        r"your (?:kids|children|family|spouse|partner|baby|toddler)", r"newborns?",
    ],
    "disability": [
        r"disabled", r"disabilit(?:y|ies)", r"handicap(?:ped)?", r"special needs", r"amputees?",
        r"(?:visually|hearing|mobility) impaired", r"neurodivergent", r"on the spectrum", r"wheelchair users?",
        r"blind", r"deaf",
    ],
    "voting status": [
        r"voters?", r"voting", r"registered to vote", r"unregistered", r"non[- ]voters?", r"did you vote",
    ],
    "trade-union membership": [
        r"union members?", r"unionized", r"unionised", r"trade unionists?", r"teamsters?",
        r"labou?r unions?", r"union workers?", r"your union",
    ],
    "criminal record": [
        r"criminal (?:record|history|past)", r"ex[- ]cons?", r"ex[- ]offenders?", r"felons?", r"felon(?:y|ies)",
        r"convicts?", r"convicted", r"arrested", r"parolees?", r"on (?:parole|probation)", r"dui",
        r"(?:formerly )?incarcerated", r"mugshots?", r"jail(?:ed)?", r"prison(?:ers?)?",
    ],
}
_META_COMPILED = {cat: re.compile(r"(?<![\w-])(?:" + "|".join(p) + r")(?![\w-])", re.IGNORECASE)
                  for cat, p in META_ATTRIBUTE_PATTERNS.items()}
# addressing a person by name: "Hi Sarah", "Dear John,", "Sarah, ..." with a common given name
_GREETING_NAME = re.compile(r"(?<![\w-])(?i:hi|hey|hello|dear)\s+([A-Z][a-z]+)")
_GIVEN_NAMES = frozenset(
    "james john robert michael william david richard joseph thomas charles mary patricia jennifer linda "
    "elizabeth barbara susan jessica sarah karen emma olivia ava sophia mia noah liam lucas ethan mason".split())
_LEADING_NAME = re.compile(r"^([A-Z][a-z]+),\s")
# a question to the reader about a personal circumstance ("Are you struggling with debt?")
_QUESTION = re.compile(r"[^.!?]*\?")
_HARDSHIP = re.compile(r"(?<![\w-])(?:struggling|suffering|diagnosed|debt|bankrupt|lonely|depressed|single|"
                       r"divorced|pregnant|unemployed|arrested|overweight|ill|sick|addicted|addiction)(?![\w-])",
                       re.IGNORECASE)
_TO_READER = re.compile(r"(?<![\w-])(?:you|your|you're|yourself)(?![\w-])", re.IGNORECASE)


def meta_personal_attributes(title: str, ad_text: str) -> list[GuardFailure]:
    """Meta's personal-attributes rules beyond the guard's own ``banned_attribute`` classes (which every channel
    keeps): statements of the classes above, a person's name, and questions to the reader about any class."""
    out: list[GuardFailure] = []
    for cat, pattern in _META_COMPILED.items():
        for m in pattern.finditer(title):
            if not _in_ad(m.group(0), ad_text, case=False):
                out.append(_attribute_failure(m.group(0), cat))
    names = [m.group(1) for m in _GREETING_NAME.finditer(title)]
    names += [m.group(1) for m in _LEADING_NAME.finditer(title) if m.group(1).lower() in _GIVEN_NAMES]
    for name in dict.fromkeys(names):
        if not _in_ad(name, ad_text, case=True):
            out.append(GuardFailure("personal_attribute", name,
                                    f"{name!r} addresses the reader by name; Meta bans asserting a person's "
                                    "name: drop it"))
    for m in _QUESTION.finditer(title):
        q = m.group(0).strip()
        if _TO_READER.search(q) and (_HARDSHIP.search(q) or find_banned_attributes(q, exempt_text=ad_text)
                                     or any(p.search(q) for p in _META_COMPILED.values())):
            out.append(GuardFailure("personal_attribute_question", q,
                                    "the question asks the reader about a personal attribute or hardship; "
                                    "Meta bans that in question form too: describe the product instead"))
    # a question is reported once, as a question
    questions = {f.span for f in out if f.rule == "personal_attribute_question"}
    return [f for f in out if f.rule != "personal_attribute" or not any(f.span in q for q in questions)]


def _attribute_failure(span: str, category: str) -> GuardFailure:
    return GuardFailure("personal_attribute", span,
                        f"{span!r} asserts or implies the reader's {category}; Meta bans that: drop it or "
                        "describe the product instead")
