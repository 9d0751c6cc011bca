"""Personal attributes a title must never state or imply about its reader, as word/pattern lists.

A personalized title may speak to interests ("for your journaling habit") but never to who the
reader *is* in a protected or sensitive sense: age, location, gender, health, religion, ethnicity,
sexuality or finances. Each category is a list of regular expressions matched case-insensitively
on word boundaries. The lists are deliberately about *people* ("for seniors", "busy moms",
"on a tight budget"), not about product words that merely share a spelling ("black ink",
"straight edge", "rich colours", "senior-size binder" is caught only if the ad does not say it).

A term the ad itself uses (its title, selling points or description) is exempt: "Women's Gel Pen"
in the ad's own title is the product, not an inference about the reader. The guard passes that
ad text as ``exempt_text``.

    >>> [m.category for m in find_banned_attributes("Planner for busy moms on a tight budget")]
    ['gender', 'finances']
    >>> find_banned_attributes("Black gel pens with a straight edge ruler")
    []
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# category -> patterns (regex fragments, joined with word boundaries). Lower-case; matching ignores case.
BANNED_ATTRIBUTE_PATTERNS: dict[str, list[str]] = {
    "age": [
        r"\d{1,3}[- ]?(?:years?|yrs?)[- ]old", r"\d{1,3}\s?yo", r"aged? \d{1,3}",
        r"(?:over|under) (?:\d0|sixty|fifty)",
        r"in (?:your|their|his|her) (?:\d0s|twenties|thirties|forties|fifties|sixties|seventies)",
        r"seniors?", r"senior citizens?", r"elderly", r"retirees?", r"retired", r"pensioners?",
        r"older adults?", r"middle[- ]aged", r"millennials?", r"gen[- ]?z(?:ers?)?", r"gen[- ]?x(?:ers?)?",
        r"boomers?", r"teens?", r"teenagers?", r"young adults?", r"youngsters?", r"grandparents?",
        r"grandmas?", r"grandpas?", r"your age", r"age group", r"golden years",
    ],
    "location": [
        r"near(?:by)? you", r"in your (?:city|town|area|neighbou?rhood|region|state|country|zip(?: code)?)",
        r"your (?:home ?town|city|neighbou?rhood|zip code)", r"locals?", r"local to you", r"where you live",
        r"living in", r"based in", r"residents? of",
        r"(?:urban|rural|suburban|city|country) (?:dwellers?|residents?)", r"new yorkers?",
        r"californians?", r"texans?", r"londoners?", r"midwesterners?", r"southerners?",
    ],
    "gender": [
        r"men", r"women", r"man", r"woman", r"males?", r"females?", r"guys?", r"dudes?", r"gals?",
        r"ladies", r"lady", r"gentlemen", r"gentleman", r"girls?", r"boys?", r"moms?", r"mums?",
        r"mothers?", r"dads?", r"fathers?", r"wives", r"wife", r"husbands?", r"girlfriends?",
        r"boyfriends?", r"he", r"she", r"him", r"her", r"his", r"hers", r"masculine", r"feminine", r"manly",
        r"girly", r"mompreneurs?", r"girlboss",
    ],
    "health": [
        r"diabet(?:es|ic)", r"arthritis", r"arthritic", r"adhd", r"add/adhd", r"autis(?:m|tic)",
        r"dyslexi(?:a|c)", r"depress(?:ion|ed)", r"anxiety", r"anxious", r"pregnan(?:t|cy)",
        r"expecting mothers?", r"disabled", r"disabilit(?:y|ies)", r"handicapped", r"illness(?:es)?",
        r"sick", r"chronic(?:ally)? ill", r"cancer", r"mental health", r"therapy", r"medications?",
        r"visually impaired", r"low vision", r"blind", r"deaf", r"hard of hearing",
        r"wheelchair(?: users?)?", r"dementia", r"alzheimer'?s", r"overweight", r"obes(?:e|ity)",
        r"weight loss", r"injur(?:y|ies|ed)", r"recovering", r"patients?", r"insomnia", r"migraines?",
        r"carpal tunnel", r"bad back", r"back pain", r"your condition",
    ],
    "religion": [
        r"christians?", r"muslims?", r"islamic", r"jewish", r"jews?", r"hindus?", r"buddhists?",
        r"catholics?", r"protestants?", r"mormons?", r"sikhs?", r"atheists?", r"religious", r"religion",
        r"church(?:goers?)?", r"mosque", r"synagogue", r"bible", r"biblical", r"quran", r"koran", r"torah",
        r"faith(?:ful)?", r"prayers?", r"praying", r"believers?", r"god", r"ramadan", r"kosher", r"halal",
        r"spiritual",
    ],
    "ethnicity": [
        r"african[- ]americans?", r"black (?:people|community|women|men|owned|families|folks|americans?)",
        r"white (?:people|community|women|men|families|folks|americans?)", r"asians?(?: americans?)?",
        r"hispanics?", r"latin[oax]s?", r"latinx", r"caucasians?", r"native americans?", r"indigenous",
        r"ethnic(?:ity|ities)?", r"racial(?:ly)?", r"your race", r"arabs?", r"immigrants?",
        r"minorit(?:y|ies)", r"people of colou?r", r"poc", r"bipoc",
    ],
    "sexuality": [
        r"gay", r"lesbians?", r"bisexuals?", r"bi", r"transgender", r"trans", r"queer", r"lgbt\w*",
        r"homosexual", r"heterosexual", r"sexual(?:ity| orientation)?", r"same[- ]sex", r"non[- ]binary",
        r"single (?:men|women)", r"dating",
    ],
    "finances": [
        r"on a (?:tight |limited |small |shoestring )?budget", r"budget[- ]conscious", r"tight budget",
        r"limited budget", r"budget (?:shoppers?|buyers?|families)", r"low[- ]income", r"high[- ]income",
        r"broke", r"poor", r"wealthy", r"affluent", r"rich (?:people|folks|customers|buyers)",
        r"millionaires?",
        r"your (?:salary|income|paycheck|savings|debt|credit(?: score)?|finances|bank account)", r"in debt",
        r"debt[- ]free", r"bankrupt(?:cy)?", r"cash[- ]strapped", r"penny[- ]pinch(?:ing|ers?)", r"frugal",
        r"struggling financially", r"unemployed", r"jobless", r"welfare", r"food stamps", r"big spenders?",
        r"high earners?", r"living paycheck",
    ],
}

BANNED_CATEGORIES = tuple(BANNED_ATTRIBUTE_PATTERNS)


def _compile(patterns: list[str]) -> re.Pattern[str]:
    # Word boundaries that also work around apostrophes and hyphens ("women's", "gen-z").
    return re.compile(r"(?<![\w-])(?:" + "|".join(patterns) + r")(?![\w-])", re.IGNORECASE)


_COMPILED = {cat: _compile(pats) for cat, pats in BANNED_ATTRIBUTE_PATTERNS.items()}


@dataclass(frozen=True)
class AttributeMatch:
    """One banned mention: its category, the matched text and where it starts."""

    category: str
    span: str
    start: int


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip().lower()


def find_banned_attributes(
    title: str, *, exempt_text: str = "", categories: tuple[str, ...] = BANNED_CATEGORIES
) -> list[AttributeMatch]:
    """Mentions of banned personal attributes in ``title``, in reading order.

    A match whose words also appear (as a whole phrase) in ``exempt_text`` is skipped: the ad
    said it, so it describes the product, not the reader.
    """
    text = title.replace("\u2019", "'")
    exempt = f" {_normalise(exempt_text)} " if exempt_text else ""
    found: list[AttributeMatch] = []
    for cat in categories:
        pattern = _COMPILED.get(cat)
        if pattern is None:
            raise ValueError(
                f"unknown banned-attribute category {cat!r}; expected one of {BANNED_CATEGORIES}"
            )
        for m in pattern.finditer(text):
            phrase = _normalise(m.group(0))
            if exempt and re.search(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", exempt):
                continue
            found.append(AttributeMatch(category=cat, span=m.group(0), start=m.start()))
    found.sort(key=lambda a: a.start)
    return found
