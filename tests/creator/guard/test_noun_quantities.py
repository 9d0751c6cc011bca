"""Noun-quantities in a title ("8 Colors") are grounded by the number AND the noun it counts, never by
the number alone: the misleading "8 Colors" for a 16-color pack that mentions 0.8 mm tips fails."""

from __future__ import annotations

import pytest

from creator.guard.check import Guard
from creator.records.facts import ad_facts
from creator.records.types import Ad

TITLE = "Sharpie Felt Tip Markers, 8 Colors"


def _ad(title: str, *points: str, description: str = "") -> Ad:
    ad = Ad(ad_id="a", title=title, brand="Sharpie", selling_points=list(points), description=description)
    ad.facts = ad_facts(ad)
    return ad


def _rules(title: str, ad: Ad) -> list[str]:
    return [f.rule for f in Guard(known_brands=["Sharpie"]).check(title, ad).failures]


def test_a_number_elsewhere_does_not_ground_a_count_of_colors():
    ad = _ad("Sharpie Felt Tip Markers, 16 Colors", "Ultra fine 0.8 mm tips", "Comes in an 8 inch case")
    assert _rules(TITLE, ad) == ["changed_unit"]
    verdict = Guard(known_brands=["Sharpie"]).check(TITLE, ad)
    assert "ad states 8 only before" in verdict.failures[0].reason


def test_a_number_the_ad_never_states_is_ungrounded():
    assert _rules(TITLE, _ad("Sharpie Felt Tip Markers, 16 Colors")) == ["ungrounded_number"]


def test_the_number_counting_another_noun_does_not_ground_it():
    assert _rules(TITLE, _ad("Sharpie Felt Tip Markers, 8 pens and 16 colors")) == ["changed_unit"]


@pytest.mark.parametrize("ad_title", [
    "Sharpie Felt Tip Markers, 8 Colors",             # the same words
    "Sharpie Felt Tip Markers, 8 colours",            # British spelling
    "Sharpie 8-Color Felt Tip Marker Set",            # hyphenated adjective
    "Sharpie Felt Tip Markers, Pack of 8 Colors",     # pack of N nouns
    "Sharpie Felt Tip Markers in 8 Colored Inks",     # N colored
    "Sharpie Felt Tip Markers, 8 Assorted Colors",    # an adjective between number and noun
])
def test_each_way_an_ad_counts_the_noun_grounds_it(ad_title):
    assert _rules(TITLE, _ad(ad_title)) == []


def test_the_count_may_come_from_a_selling_point_or_the_description():
    assert _rules(TITLE, _ad("Sharpie Felt Tip Markers", "Includes 8 vivid colors")) == []
    assert _rules(TITLE, _ad("Sharpie Felt Tip Markers", description="A set of 8 colors for sketching.")) == []


@pytest.mark.parametrize("title", ["Sharpie 8-Color Felt Tip Markers", "Sharpie Markers, 8 Colours"])
def test_title_spellings_are_read_the_same_way(title):
    assert _rules(title, _ad("Sharpie Felt Tip Markers, 8 colors")) == []
    assert _rules(title, _ad("Sharpie Felt Tip Markers, 16 colors", "8 inch case")) == ["changed_unit"]


def test_bare_numbers_are_still_grounded_by_the_number_alone():
    assert _rules("Sharpie Markers 8", _ad("Sharpie Felt Tip Markers, 16 Colors", "8 inch case")) == []


def test_model_numbers_with_letters_are_not_counts():
    ad = _ad("HP 74 Black Ink Cartridge")
    assert [f.rule for f in Guard(known_brands=["HP"]).check("HP 74XL Ink Cartridge", ad).failures] == [
        "ungrounded_model_number"]


def test_a_count_of_the_product_is_grounded_by_the_ads_count():
    ad = _ad("Sharpie 32707 Retractable Permanent Markers, Fine Point, Assorted Colors, 12 Count")
    assert _rules("Sharpie Permanent Markers, 12 Markers", ad) == []
    assert _rules("Sharpie Permanent Markers, Pack of 12 Markers", ad) == []
    assert _rules("Sharpie Permanent Markers in 12 Colors", ad) == ["changed_unit"]  # 12 markers, not 12 colors
    assert _rules("Sharpie Permanent Markers, 12 Points", ad) == ["changed_unit"]  # not the product


def test_a_count_elsewhere_does_not_ground_a_count_of_colors():
    ad = _ad("Sharpie Felt Tip Markers, 16 Colors, Pack of 8")
    assert _rules("Sharpie Felt Tip Markers, 8 Markers", ad) == []
    assert _rules(TITLE, ad) == ["changed_unit"]
