"""Guard: hand-written titles for hand-written ads of several categories (not only office products)."""

from __future__ import annotations

import pytest

from creator.guard.banned_attributes import find_banned_attributes
from creator.guard.check import (
    ChainedFactChecker,
    Guard,
    GuardConfig,
    NLIFactChecker,
    RuleFactChecker,
    known_brands_from_ads,
)
from creator.records.facts import ad_facts
from creator.records.types import Ad

BRANDS = ["Pilot", "BIC", "HP", "Canon", "Anker", "Levi's", "Lodge", "Paper Mate", "Sharpie", "Bold"]


def _ad(ad_id: str, title: str, brand: str, points: list[str], description: str = "") -> Ad:
    ad = Ad(ad_id=ad_id, title=title, brand=brand, selling_points=points, description=description)
    ad.facts = ad_facts(ad)
    return ad


PEN = _ad(
    "pen",
    "Pilot G2 Retractable Gel Pens, Fine Point 0.7mm, Black Ink, 12-Pack",
    "Pilot",
    ["Smooth writing with a comfortable rubber grip", "Refillable and water resistant ink"],
)
INK = _ad(
    "ink",
    "HP 74 Black Original Ink Cartridge (CB335WN), 200 Pages",
    "HP",
    ["Works with HP Deskjet D4260 printers", "Up to 200 pages per cartridge"],
)
CHARGER = _ad(
    "chg",
    "Anker PowerPort III 65W USB-C Charger, 2 Ports, Foldable Plug",
    "Anker",
    ["Charges a laptop at full 65W speed", "Compact: 40% smaller than a stock charger"],
    description="Compatible with MacBook, iPhone and Pixel phones. 18-month warranty.",
)
JEANS = _ad(
    "jns",
    "Levi's Women's 711 Skinny Jeans, 28W x 30L, Dark Wash",
    "Levi's",
    ["Mid-rise skinny fit that stays put", "Stretch denim for all-day comfort"],
)
PAN = _ad(
    "pan",
    "Lodge 10.25 Inch Cast Iron Skillet, Pre-Seasoned",
    "Lodge",
    ["Pre-seasoned with 100% natural vegetable oil", "Made in the USA since 1896"],
)


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard(known_brands=BRANDS)


def rules(verdict) -> list[str]:
    return [f.rule for f in verdict.failures]


@pytest.mark.parametrize(
    ("title", "ad"),
    [
        # fine paraphrases: reworded, reordered, units respelled, facts dropped, interests added
        ("Pilot G2 Gel Pens, 0.7 mm Fine Point, 12 Pack, for Your Daily Journaling", PEN),
        ("Journal in Style: Pilot G2 Gel Pens, Pack of 12, Black", PEN),
        ("Smooth, Refillable Pilot G2 Gel Pens for Note-Taking Students", PEN),
        ("Black Gel Pens with a Comfortable Grip for Long Writing Sessions", PEN),
        ("HP 74 Ink Cartridge for Your Deskjet D4260, 200 Pages", INK),
        ("HP 74 Black Ink (CB335WN) - Print up to 200 pages of Homework", INK),
        ("Anker 65W USB-C Charger for Your MacBook, 2 Ports, 40% Smaller", CHARGER),
        ("Travel Light: Foldable Anker PowerPort III Charger With 18-Month Warranty", CHARGER),
        ("Levi's Women's 711 Skinny Jeans in Dark Wash, Stretch for All-Day Comfort", JEANS),
        ('Lodge 10.25" Cast Iron Skillet, Made in the USA, Ready for Weekend Cooking', PAN),
        ("Lodge 10.25 in. Pre-Seasoned Skillet for Your Home Kitchen Projects", PAN),
    ],
)
def test_fine_paraphrases_pass(guard: Guard, title: str, ad: Ad) -> None:
    verdict = guard.check(title, ad)
    assert verdict.passed, verdict.to_dict()


@pytest.mark.parametrize(
    ("title", "ad", "expected"),
    [
        ("Pilot G2 Gel Pens, 0.7mm, 24-Pack", PEN, ["ungrounded_number"]),  # invented count
        ("Pilot G2 Gel Pens, 0.5mm, 12-Pack", PEN, ["ungrounded_number"]),  # changed number
        ("Pilot G2 Gel Pens, 0.7 inch, 12-Pack", PEN, ["changed_unit"]),  # 0.7 exists in mm only
        ("HP 74 Ink, 200 Sheets, 200 oz", INK, ["changed_unit", "changed_unit"]),  # the ad's 200 are pages
        ("HP 74 Ink, 200 Pages, 200 oz", INK, ["changed_unit"]),  # noun ok, oz is a unit change
        ("Anker 100W USB-C Charger, 2 Ports", CHARGER, ["ungrounded_number"]),
        ("Anker 65W Charger With 3-Year Warranty", CHARGER, ["ungrounded_number"]),
        ("HP 74 Ink (CB337WN) for Deskjet", INK, ["ungrounded_model_number"]),  # a model number the ad lacks
        ("HP 74XL High-Yield Ink Cartridge", INK, ["ungrounded_model_number"]),
        ("Levi's 511 Slim Jeans, 28W x 30L", JEANS, ["ungrounded_number"]),  # 511 never stated
        ("BIC Gel Pens, 0.7mm, Black, 12-Pack", PEN, ["wrong_brand"]),
        ("Paper Mate Gel Pens, 0.7mm Fine Point", PEN, ["wrong_brand"]),
        ("Canon-Compatible HP 74 Ink Cartridge", INK, ["wrong_brand"]),
        ("Pilot G2 Waterproof Gel Pens, 12-Pack", PEN, ["ungrounded_claim"]),  # ad says water resistant only
        ("Lodge 10.25 Inch Skillet, Lifetime Warranty", PAN, ["ungrounded_claim", "ungrounded_claim"]),
        ("Pilot G2 Gel Pens, a Dozen Black Pens", PEN, []),  # dozen == 12: grounded
        ("Pilot G2 Gel Pens, Twenty Black Pens", PEN, ["ungrounded_number"]),
    ("Pilot G2 Gel Pens for 3rd Grade Notes", PEN, ["ungrounded_number"]),       # an ordinal is a number
    ("Anker 65W Charger, 2nd Port Free", CHARGER, []),                          # 2 ports: grounded
    ],
)
def test_ungrounded_facts_fail_with_the_right_rule(
    guard: Guard, title: str, ad: Ad, expected: list[str]
) -> None:
    assert rules(guard.check(title, ad)) == expected


def test_brand_named_by_the_ad_itself_is_fine(guard: Guard) -> None:
    ad = _ad(
        "t", "Generic Toner Cartridge, Replacement for Canon 137", "TonerPro", ["Fits Canon MF232w printers"]
    )
    assert guard.check("Canon 137 Replacement Toner for Your MF232w", ad).passed


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Pilot G2 Pens for Seniors Who Love Letters", "age"),
        ("Gel Pens Every 35-year-old Needs", "age"),
        ("Pilot G2 Pens for Retirees, 12-Pack", "age"),
        ("Pilot G2 Pens, Loved by New Yorkers", "location"),
        ("Pilot G2 Pens Delivered to Shops Near You", "location"),
        ("Pilot G2 Pens for Busy Moms", "gender"),
        ("The Pen Every Guy Needs: Pilot G2", "gender"),
        ("Gel Pens for Her Daily Planner", "gender"),
        ("Easy-Grip Pens for Arthritis Sufferers", "health"),
        ("Pilot G2 Pens for Your ADHD Focus Journal", "health"),
        ("Pilot G2 Pens for Your Bible Study Notes", "religion"),
        ("Gel Pens for Christian Journaling", "religion"),
        ("Pilot G2 Pens Celebrating Hispanic Heritage", "ethnicity"),
        ("Gel Pens for the LGBTQ Community", "sexuality"),
        ("Pilot G2 Pens for Writers on a Tight Budget", "finances"),
        ("Gel Pens for Budget-Conscious Shoppers", "finances"),
        ("Pens Worth Every Cent of Your Paycheck", "finances"),
    ],
)
def test_banned_attributes_fail(guard: Guard, title: str, category: str) -> None:
    verdict = guard.check(title, PEN)
    banned = [f for f in verdict.failures if f.rule == "banned_attribute"]
    assert len(banned) == 1 and banned[0].reason.endswith(category), verdict.to_dict()


@pytest.mark.parametrize(
    "title",
    [
        "Black Gel Pens With a Straight, Smooth Line",  # 'black' and 'straight' describe ink and line
        "Rich Black Ink for Every Note You Take",
        "Pilot G2 Pens for Your Home Office",
        "Pilot G2 Pens for Students and Planners",
        "The Other Pen You'll Reach For: Pilot G2",  # 'other' is not 'her'
        "Pilot G2 Pens, a Gift for Your Team",
    ],
)
def test_words_that_only_look_personal_pass(guard: Guard, title: str) -> None:
    assert guard.check(title, PEN).passed, guard.check(title, PEN).to_dict()


def test_attribute_the_ad_states_is_the_product_not_the_reader(guard: Guard) -> None:
    assert guard.check("Levi's Women's 711 Skinny Jeans, Dark Wash", JEANS).passed
    assert rules(guard.check("Levi's 711 Skinny Jeans for Moms", JEANS)) == ["banned_attribute"]
    assert find_banned_attributes("Planner for busy moms", exempt_text="A planner for moms") == []


def test_hard_limits() -> None:
    cfg = GuardConfig(
        max_chars=30, max_words=4, max_added_chars=5, banned_words=["cheap"], flag_unchanged=True
    )
    guard = Guard(cfg)
    ad = _ad("x", "Gel Pens, 12-Pack", "", [])
    assert rules(guard.check("   ", ad)) == ["empty"]
    assert rules(guard.check("Gel Pens, 12-Pack", ad)) == ["unchanged"]
    # 17-char original; 'Cheap Gel Pens, 12-Pack' = 23 chars -> 6 added > 5
    assert rules(guard.check("Cheap Gel Pens, 12-Pack", ad)) == ["too_many_added_chars", "banned_word"]
    v = guard.check("Gel Pens in a Handy Twelve-Count Desk Box Set", ad)
    assert {"too_long", "too_many_words", "too_many_added_chars"} <= set(rules(v))
    assert rules(guard.check("Gel Pens, 12-Pack", ad, original_title="Other")) == ["too_many_added_chars"]


def test_config_validation_names_the_fix() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        GuardConfig(max_chars=0)
    with pytest.raises(ValueError, match="choose from"):
        GuardConfig(banned_categories=["zodiac"])


def test_model_checker_behind_the_same_protocol() -> None:
    """A fake NLI model isolates the checker: it 'entails' only titles whose words all occur in the ad."""

    def entail(premise: str, hypothesis: str) -> float:
        words = set(premise.lower().replace(",", " ").split())
        return 1.0 if all(w in words for w in hypothesis.lower().replace(",", " ").split()) else 0.1

    checker = ChainedFactChecker(RuleFactChecker(BRANDS), NLIFactChecker(entail, threshold=0.5))
    guard = Guard(fact_checker=checker)
    assert guard.check("Pilot G2 Gel Pens", PEN).passed
    verdict = guard.check("Pilot G2 Gel Pens Loved Worldwide", PEN)
    assert rules(verdict) == ["ungrounded_claim"] and verdict.checker == "rules+nli"

    def broken(premise: str, hypothesis: str) -> float:
        raise RuntimeError("model server down")

    verdict = Guard(fact_checker=NLIFactChecker(broken)).check("Pilot G2 Gel Pens", PEN)
    assert rules(verdict) == ["ungrounded_claim"] and "not verified" in verdict.failures[0].reason


def test_generic_brand_names_are_not_used_for_wrong_brand() -> None:
    ads = [_ad(str(i), f"Acme Bold Marker {i}", "Acme", []) for i in range(4)] + [
        _ad("b", "Bold Pen", "Bold", [])
    ]
    assert "Bold" not in known_brands_from_ads(ads) and "Acme" in known_brands_from_ads(ads)


def test_a_title_must_be_words_about_the_ads_product(guard: Guard) -> None:
    """The two failure modes a barely trained generator showed: punctuation, and another product."""
    assert rules(guard.check("-.,", PEN)) == ["empty", "off_topic"]
    paper = _ad("paper", "Thermal Paper Rolls, 2-1/4 x 50 ft, 50 Rolls", "Sparco", ["BPA free thermal paper"])
    verdict = guard.check("Superaz Brass Basic Scale Clipboard, Black", paper)
    assert "off_topic" in rules(verdict)
    # a real rewrite keeps the product's words even when it adds a hook: 2 of 6 content words is enough
    assert guard.check("Sparco Thermal Rolls for Busy Checkout Counters", paper).passed
    off = Guard(GuardConfig(min_words=0, min_title_overlap=0.0))
    assert off.check("-.,", PEN).passed
