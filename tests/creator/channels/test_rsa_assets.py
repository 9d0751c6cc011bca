"""Responsive search ad assets (``creator.channels.rsa_assets``) and the Google Ads Editor rows built from them
(``creator.io.google_ads``): at least 3 headlines and 2 descriptions from grounded, guard-passing material;
rows that fall short are written and listed, never silently."""

from __future__ import annotations

import csv
import logging

import pytest

from creator.channels.rsa_assets import cut_at_boundary, rsa_assets
from creator.guard.check import Guard, GuardConfig
from creator.io.google_ads import GOOGLE_ADS_COLUMNS, rsa_guards, write_google_ads_csv
from creator.records.types import Ad, Creative

MARKERS = Ad(ad_id="m", title="EXPO Low Odor Dry Erase Markers, Chisel Tip, Assorted Colors, 16 Pack", brand="EXPO",
             selling_points=[
                 "Expo Low Odor Dry Erase Markers feature vivid ink thats easy to see from a distance, "
                 "and the chisel tip draws broad, medium and fine lines",
                 "These markers erase cleanly and easily from whiteboards and most non-porous surfaces",
                 "Ink is specially formulated to be low-odor",  # names no product word: off_topic alone
             ])
STAPLER = Ad(ad_id="s", title="Swingline Stapler, Optima 40, Compact Desktop Stapler, 40 Sheet Capacity, Low Force, "
             "Orange/Silver/Black (87842)", brand="Swingline")  # no selling points, no short form passes


def guards(banned: list[str] | None = None):
    return rsa_guards(Guard(GuardConfig.for_channel("google-rsa-headline", banned_words=banned or [])))


@pytest.mark.parametrize("text, limit, expected", [
    ("Smooth writing gel ink", 40, "Smooth writing gel ink"),  # fits whole
    # punctuation is preferred to a later "and"
    ("Made of durable, tear-resistant plastic, with front and back pockets on every page", 60,
     "Made of durable, tear-resistant plastic"),
    # no punctuation: before the joining word
    ("The pad lets you type more comfortably and provides a smooth surface for the mouse", 60,
     "The pad lets you type more comfortably"),
    # no boundary at all: a word cut that does not end on "of" or inside brackets
    ("Sturdy binder rings hold hundreds of pages (up to 300 sheets)", 36, "Sturdy binder rings hold hundreds"),
    ("Sturdy binder rings (metal) hold pages", 25, "Sturdy binder rings"),
])
def test_cut_at_boundary(text, limit, expected):
    got = cut_at_boundary(text, limit)
    assert got == expected and len(got) <= limit


def test_cut_at_boundary_without_a_phrase_gives_nothing_when_word_cuts_are_off():
    assert cut_at_boundary("Sturdy binder rings hold hundreds of pages", 20, word_cut=False) is None
    assert cut_at_boundary("Tabs", 2) is None


def test_assets_reach_three_headlines_and_two_descriptions_all_passing_their_guard():
    hg, dg = guards()
    served = ["Low Odor Expo Markers", "Expo Chisel Tip Markers"]
    got = rsa_assets(MARKERS, served, hg, dg)
    assert got.complete and len(got.headlines) >= 3 and len(got.descriptions) >= 2
    assert got.headlines[:2] == served  # the segment's titles first
    assert len({h.casefold() for h in got.headlines}) == len(got.headlines)  # distinct, as Google asks
    for h in got.headlines:
        assert hg.check(h, MARKERS).passed and len(h) <= 30
    for d in got.descriptions:
        assert dg.check(d, MARKERS).passed and len(d) <= 90
    # the first point is cut at its phrase boundary, not mid-word
    assert got.descriptions[0] == "Expo Low Odor Dry Erase Markers feature vivid ink thats easy to see from a distance"
    # the point that does not name the product failed off_topic alone and is served after the ad's short name
    assert "Ink is specially formulated to be low-odor" not in got.descriptions
    assert any(d.endswith(". Ink is specially formulated to be low-odor") for d in got.descriptions)


def test_a_served_title_that_fails_the_headline_guard_is_left_out():
    hg, dg = guards(banned=["chisel"])
    got = rsa_assets(MARKERS, ["Expo Chisel Tip Markers", "Low Odor Expo Markers"], hg, dg)
    assert got.headlines[0] == "Low Odor Expo Markers" and got.complete
    assert not any("chisel" in t.lower() for t in got.headlines + got.descriptions)


def test_description_channel_serves_its_title_as_a_description():
    hg, dg = rsa_guards(Guard(GuardConfig.for_channel("google-rsa-description")))
    text = "Expo dry erase markers erase cleanly from whiteboards"
    got = rsa_assets(MARKERS, [text], hg, dg, served_as="description")
    assert got.descriptions[0] == text and text not in got.headlines and got.complete


def test_export_fills_rows_and_lists_the_ones_that_fall_short(tmp_path, caplog):
    guard = Guard(GuardConfig.for_channel("google-rsa-headline"))
    creatives = [Creative(ad_id="m", title="Low Odor Expo Markers", source="personalized", segment_id=0),
                 Creative(ad_id="m", title="Expo Erase Markers, 16 Pack", source="shortened", segment_id=1),
                 Creative(ad_id="s", title="", source="withheld", segment_id=0)]
    alternates = {(0, "m"): ["Expo Chisel Tip Markers"]}
    with caplog.at_level(logging.WARNING, logger="creator.io.google_ads"):
        export = write_google_ads_csv(creatives, tmp_path / "g.csv", channel="google-rsa-headline",
                                      ads={"m": MARKERS, "s": STAPLER}, guard=guard, alternates=alternates,
                                      final_url="https://example.com/{ad_id}")
    with (tmp_path / "g.csv").open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == GOOGLE_ADS_COLUMNS
    by_group = {(r["Ad group"], r["Final URL"].rsplit("/", 1)[1]): r for r in table}
    seg0 = by_group["segment 0", "m"]
    assert (seg0["Headline 1"], seg0["Headline 2"]) == ("Low Odor Expo Markers", "Expo Chisel Tip Markers")
    for r in (seg0, by_group["segment 1", "m"]):
        heads = [r[f"Headline {i}"] for i in range(1, 16) if r[f"Headline {i}"]]
        descs = [r[f"Description {i}"] for i in range(1, 5) if r[f"Description {i}"]]
        assert len(heads) >= 3 and len(descs) >= 2
    assert by_group["segment 1", "m"]["Headline 1"] == "Expo Erase Markers, 16 Pack"
    # no headline of the stapler passes (withheld, no short form fits): its row is written with the one
    # description that does, and it is counted and named in the warning, not dropped silently
    stapler = by_group["segment 0", "s"]
    assert stapler["Headline 1"] == "" and stapler["Description 1"].startswith("Swingline Stapler")
    assert export.rows == 3 and len(table) == 3
    assert export.incomplete == [("segment 0", "s", 0, 1)]
    assert export.summary() == {"google_ads_rows": 3, "google_ads_incomplete": 1}
    assert "1 of 3 ad groups" in caplog.text and "segment 0 ad s" in caplog.text


def test_an_incomplete_row_is_still_written(tmp_path):
    thin = Ad(ad_id="t", title="Scotch Magic Tape", brand="Scotch")  # 1 headline, 1 description at most
    export = write_google_ads_csv([Creative(ad_id="t", title="Scotch Magic Tape", source="original", segment_id=2)],
                                  tmp_path / "g.csv", channel="google-rsa-headline", ads={"t": thin},
                                  guard=Guard(GuardConfig.for_channel("google-rsa-headline")))
    with (tmp_path / "g.csv").open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["Headline 1"] == "Scotch Magic Tape" and export.rows == 1
    (group, ad_id, n_heads, n_descs), = export.incomplete
    assert (group, ad_id) == ("segment 2", "t") and (n_heads < 3 or n_descs < 2)
