"""Anti-gaming penalties: each attack triggers its own penalty; honest titles (and the ad's own) pay none."""

from __future__ import annotations

import pytest

from creator.records.types import Ad, HistoryItem, User
from creator.reward.gaming import GamingConfig, gaming_penalties, words

USER = User(
    "u",
    [
        HistoryItem("1", "Moleskine Classic Notebook, Hard Cover, Large, Ruled"),
        HistoryItem("2", "Pilot G2 Retractable Gel Pens, Fine Point, Black Ink, 12-Pack"),
        HistoryItem("3", "Tape"),
    ],
)
AD = Ad(
    "9",
    "BIC Round Stic Ballpoint Pen, Medium Point, Black, 10-Count",
    description="Classic ballpoint pen with a medium point for smooth writing at school or office.",
    selling_points=["medium point for smooth writing"],
)
CFG = GamingConfig()


def pen(title: str, ad: Ad | None = AD, cfg: GamingConfig = CFG) -> dict[str, float]:
    return gaming_penalties(title, USER, ad, cfg)


def test_words_fold_plurals_and_drop_stopwords():
    assert words("The Pens and a Notebook for School") == ["pen", "notebook", "school"]
    assert words("Glass class") == ["glass", "class"]


def test_honest_titles_pay_nothing():
    assert pen(AD.title)["total"] == 0.0
    assert (
        pen("BIC Round Stic Ballpoint Pen for Smooth Writing, Medium Point, Black, 10-Count")["total"] == 0.0
    )


def test_pasting_a_history_title_is_penalised():
    p = pen("Moleskine Classic Notebook, Hard Cover, Large, Ruled")
    # all 7 words of the history title reappear and the ad's title shares none: 8 * (1 - .5) / .5 = 8
    assert p["history_copy"] == pytest.approx(8.0)
    appended = pen(AD.title + " | Pilot G2 Retractable Gel Pens, Fine Point, Black Ink, 12-Pack")
    assert appended["history_copy"] > 0


def test_copy_is_relative_to_the_ads_own_title():
    # a repurchase: the ad *is* a history item, so its own title is not a copy
    ad = Ad("1", USER.history[0].title)
    assert pen(ad.title, ad=ad)["history_copy"] == 0.0
    # without the ad the check is absolute, and the same title is flagged
    assert pen(ad.title, ad=None)["history_copy"] > 0
    # history titles shorter than copy_min_words are never checked
    assert pen("Tape", ad=None)["history_copy"] == 0.0


def test_a_title_built_from_the_ads_selling_point_is_not_a_copy_of_a_history_title():
    # the selling point shares calculator, paper, roll with the user's history title: the ad says them
    ad = Ad("o", "Desk Organizer with 4 Drawers", selling_points=["keeps calculators and paper rolls in reach"])
    user = User("c", [HistoryItem("1", "Printing Calculator with Paper Roll")])
    title = "Desk Organizer with 4 Drawers: keeps calculators and paper rolls in reach"
    assert gaming_penalties(title, user, ad, CFG)["history_copy"] == 0.0
    # the same words pasted from the history into an ad that never says them are still a copy
    bare = Ad("o", "Desk Organizer with 4 Drawers")
    assert gaming_penalties("Desk Organizer with 4 Drawers: Printing Calculator with Paper Roll", user, bare,
                            CFG)["history_copy"] > 0


def test_keyword_stuffing_by_repetition():
    p = pen("Pen Pen Pen Pens Black Pen Ballpoint Pen")
    # 'pen' 6 times -> 5 extra repeats; the ad title repeats nothing; (5 - 1 tolerated) * 1.5 = 6
    assert p["repetition"] == pytest.approx(6.0)


def test_stuffing_with_the_users_words():
    p = pen(AD.title + " Moleskine Notebook Gel Retractable")
    # moleskine, notebook, gel, retractable: in the history, not in the ad's text; 4 words, none tolerated
    assert p["history_keywords"] == pytest.approx(4.0)
    assert p["history_copy"] == 0.0  # no single history title is mostly pasted


def test_overlong_titles():
    limit = max(CFG.max_chars, len(AD.title) + CFG.max_added_chars)
    assert pen("x" * limit)["length"] == 0.0
    assert pen("x" * (limit + 50))["length"] == pytest.approx(5.0)  # 50 chars over, 1 per 10
    assert pen("x" * 200, ad=None)["length"] == pytest.approx(5.0)  # absolute limit 150


def test_disabled_and_validated():
    off = GamingConfig(enabled=False)
    assert pen("Pen Pen Pen Pen Pen Pen " * 10, cfg=off)["total"] == 0.0
    with pytest.raises(ValueError, match="switch that penalty off"):
        GamingConfig(copy_weight=-1)
    with pytest.raises(ValueError, match="copy_tolerance"):
        GamingConfig(copy_tolerance=1.0)
