"""Channels: presets and platform length, Google editorial and Meta personal-attribute rules (a passing and a
failing example each, after the policies' own examples), the shortened fallback, the ``check`` verb and the
Google Ads Editor export."""

from __future__ import annotations

import csv
import json

import pytest
from fake_parts import fake_components, make_users

import app.generate as generate
from app.cli import main as cli_main
from creator.channels.presets import CHANNELS, display_width, get_channel
from creator.channels.shortening import channel_fallback, shortened_titles
from creator.guard.check import RULES, Guard, GuardConfig
from creator.io.google_ads import GOOGLE_ADS_COLUMNS
from creator.pipeline.catalog import PipelineConfig
from creator.records.errors import DataError
from creator.records.types import Ad

PENS = Ad(ad_id="p", title="Pilot G2 Retractable Premium Gel Ink Roller Ball Pens, Fine Point, Black, 12-Pack",
          brand="Pilot", selling_points=["Smooth writing", "USB-C charging case"])
HP = Ad(ad_id="h", title="HP 74 Ink Cartridge (CB335WN)", brand="HP", selling_points=["Prints up to 200 pages"])


def rules(channel: str, title: str, ad: Ad = PENS) -> list[str]:
    return sorted({f.rule for f in Guard(GuardConfig.for_channel(channel)).check(title, ad).failures})


def test_presets_and_platform_counting():
    assert {n: c.max_chars for n, c in CHANNELS.items()} == {
        "google-rsa-headline": 30, "google-rsa-description": 90, "meta-headline": 40, "merchant-title": 150,
        "generic": 120}
    assert display_width("Gel Pens") == 8 and display_width("ボールペン") == 10 and display_width("ＡＢ") == 4
    # 19 characters, 35 as Google counts them: too long for a headline though len() says 19
    jp = "パイロット ゲルインク ボールペン 黒"
    assert len(jp) == 19 and rules("google-rsa-headline", jp, Ad(ad_id="j", title=jp)) == ["too_long"]
    assert rules("generic", jp, Ad(ad_id="j", title=jp)) == []
    with pytest.raises(DataError, match="unknown channel.*google-rsa-headline") as err:
        get_channel("google")
    assert "\n" not in str(err.value)
    assert set(CHANNELS["google-rsa-headline"].__dataclass_fields__) >= {"name", "max_chars", "source_url_comment"}


def test_generic_is_the_guard_as_it_was():
    long = "Pilot G2 Gel Pens!! Fine Point... CLICK HERE " + "x" * 40
    assert GuardConfig.for_channel("generic") == GuardConfig()
    assert rules("generic", "Pilot G2 Gel Pens!! Fine Point, 12-Pack...") == []
    assert "too_long" in rules("generic", long + "y" * 60)


@pytest.mark.parametrize(("rule", "passing", "failing"), [
    ("exclamation", "Pilot G2 Gel Pens, 12-Pack", "Pilot G2 Gel Pens, 12-Pack!"),
    ("repeated_punctuation", "Pilot Gel Pens? 12-Pack", "Pilot Gel Pens?? 12-Pack"),
    ("ellipsis", "Pilot Gel Pens, Fine Point", "Pilot Gel Pens... Fine Point"),
    ("emoji_or_symbol", "Pilot\u00ae Gel Pens, 12-Pack", "Pilot Gel Pens \u2605 12-Pack"),
    ("symbol_for_word", "Pilot Gel Pens for You", "Pilot Gel Pens 4 U"),
    ("all_caps", "Pilot Gel Pens, USB-C Case", "Pilot Gel Pens, FINE Point"),
    ("phone_number", "Pilot Gel Pens, 12-Pack", "Pilot Gel Pens 800-555-0199"),
    ("click_here", "Pilot Gel Pens, Shop Now", "Pilot Gel Pens, Click Here"),
    ("double_space", "Pilot Gel Pens, 12-Pack", "Pilot Gel  Pens, 12-Pack"),
    ("word_repetition", "Pilot Gel Pens, Smooth", "Pilot Gel Pens Pens Pens"),
])
def test_google_editorial_rules(rule, passing, failing):
    assert rule not in rules("google-rsa-headline", passing), passing
    got = Guard(GuardConfig.for_channel("google-rsa-headline")).check(failing, PENS).failures
    hit = [f for f in got if f.rule == rule]
    assert hit and hit[0].span and hit[0].span in failing and len(hit[0].reason) > 20, (failing, got)
    assert rule in RULES
    # the same title passes the rule on a non-Google channel
    assert rule not in rules("meta-headline", failing)


def test_exclamation_one_in_a_description_and_caps_the_ad_writes_itself():
    assert "exclamation" not in rules("google-rsa-description", "Pilot G2 Gel Pens, smooth writing!")
    assert "exclamation" in rules("google-rsa-description", "Pilot G2 Gel Pens! Smooth writing!")
    # brand and model number as the ad writes them
    assert rules("google-rsa-headline", "HP 74 Ink Cartridge CB335WN", HP) == []


@pytest.mark.parametrize(("passing", "failing"), [
    ("Planner for your busy week", "Planner for single parents"),                       # family status
    ("Planner with big print", "Planner for disabled readers"),                          # disability
    ("Planner for the election season", "Planner for registered voters"),                 # voting status
    ("Planner for every shift", "Planner for union members"),                             # trade union
    ("Planner for a fresh start", "Planner for ex-offenders"),                            # criminal record
    ("Planner for your week", "Hi Sarah, your planner"),                           # a person's name
    ("Need a planner for your week?", "Are you struggling with debt? Planner"),            # question form
    ("Want a planner that keeps up?", "Do you have diabetes? Track it in a planner"),       # question form
])
def test_meta_personal_attributes_in_statement_and_question_form(passing, failing):
    ad = Ad(ad_id="pl", title="Weekly Planner, 2024, Hardcover", brand="")
    meta = {"personal_attribute", "personal_attribute_question"}
    assert not meta & set(rules("meta-headline", passing, ad)), passing
    assert meta & set(rules("meta-headline", failing, ad)), failing
    assert not meta & set(rules("google-rsa-headline", failing, ad))  # Meta's rules are Meta's


def test_the_tool_stays_stricter_than_meta_on_location():
    ad = Ad(ad_id="pl", title="Weekly Planner, 2024", brand="")
    assert "banned_attribute" in rules("meta-headline", "Planner for New Yorkers", ad)


def test_shortened_fallback_complies_and_uses_the_ads_words():
    guard = Guard(GuardConfig.for_channel("google-rsa-headline"))
    title, source = channel_fallback(PENS, guard)
    assert source == "shortened" and guard.check(title, PENS).passed and len(title) <= 30
    assert title.startswith("Pilot") and "12-Pack" in title
    assert set(title.replace(",", "").split()) <= set(PENS.title.replace(",", "").split())
    assert channel_fallback(HP, guard) == (HP.title, "original")  # short enough: served as it is
    assert all(len(t) <= 20 for t in shortened_titles(PENS, max_chars=20))
    # nothing of the ad fits 5 characters: withheld, never cut mid-word
    assert channel_fallback(PENS, Guard(GuardConfig.for_channel("generic", max_chars=5))) == ("", "withheld")


def test_pipeline_config_rejects_an_unknown_channel():
    with pytest.raises(DataError, match="unknown channel"):
        PipelineConfig(channel="tiktok")


@pytest.fixture
def catalog(tmp_path):
    ads = [PENS, HP, Ad(ad_id="n", title="Post-it Super Sticky Notes, 3 x 3 in, Canary Yellow, 24 Pads",
                        brand="Post-it")]
    (tmp_path / "ads.jsonl").write_text("".join(json.dumps(a.to_dict()) + "\n" for a in ads))
    (tmp_path / "users.jsonl").write_text("".join(json.dumps(u.to_dict()) + "\n" for u in make_users()))
    for part in ("user_model", "generator"):
        (tmp_path / "models" / part).mkdir(parents=True)
    return tmp_path


def test_generate_under_a_channel_serves_only_compliant_titles_and_exports_google_ads(catalog, monkeypatch):
    def load(config, bundle, ads):  # the fake backend's titles ("0 p cand 1") all fail: every pair falls back
        return fake_components(guard=Guard(GuardConfig.for_channel(config.channel)))

    monkeypatch.setattr(generate, "build_components", load)
    out = catalog / "run"
    assert cli_main(["generate", "--ads", str(catalog / "ads.jsonl"), "--users", str(catalog / "users.jsonl"),
                     "--model", str(catalog / "models"), "--out", str(out), "--clusters", "2", "--no-progress",
                     "--channel", "google-rsa-headline", "--export", "google-ads", "--output-format", "jsonl",
                     "--final-url", "https://example.com/p/{ad_id}"]) == 0
    rows = [json.loads(line) for line in (out / "creatives.jsonl").read_text().splitlines()]
    assert {r["source"] for r in rows} == {"fallback", "shortened"}
    assert all(len(r["title"]) <= 30 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shortened"] == sum(r["source"] == "shortened" for r in rows) > 0
    with (out / "google_ads.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == GOOGLE_ADS_COLUMNS and len(table) == len(rows)
    assert {r["Ad group"] for r in table} == {"segment 0", "segment 1"}
    assert all(0 < len(r["Headline 1"]) <= 30 and r["Final URL"].startswith("https://example.com/p/") for r in table)
    # each row is counted, and the ones short of 3 headlines / 2 descriptions are counted too
    short = [r for r in table if not r["Headline 3"] or not r["Description 2"]]
    assert summary["google_ads_rows"] == len(table) and summary["google_ads_incomplete"] == len(short)


def test_export_google_ads_needs_a_google_channel(catalog, capsys):
    assert cli_main(["generate", "--ads", str(catalog / "ads.jsonl"), "--users", str(catalog / "users.jsonl"),
                     "--model", str(catalog / "models"), "--out", str(catalog / "x"), "--export", "google-ads"]) == 2
    assert "needs a Google Ads channel" in capsys.readouterr().err


def _check(tmp_path, titles: str, name: str = "titles.csv", channel: str = "google-rsa-headline"):
    (tmp_path / "ads.jsonl").write_text("".join(json.dumps(a.to_dict()) + "\n" for a in (PENS, HP)))
    (tmp_path / name).write_text(titles)
    return cli_main(["check", "--channel", channel, "--ads", str(tmp_path / "ads.jsonl"),
                     "--titles", str(tmp_path / name), "--out", str(tmp_path / "out")])


def test_checker_prints_verdicts_writes_them_and_fails_on_any_bad_title(tmp_path, capsys):
    rc = _check(tmp_path, "ad_id,title\np,\"Pilot G2 Gel Pens, 12-Pack\"\nh,HP 74 Ink!!\n"
                          "p,Pilot Gel Pens... CLICK HERE\n")
    printed = capsys.readouterr().out
    assert rc == 1
    assert "PASS  line 2  ad p" in printed and "FAIL  line 3  ad h  exclamation" in printed
    assert "1 of 3 titles pass" in printed and "click_here" in printed
    verdicts = [json.loads(line) for line in (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()]
    assert [v["passed"] for v in verdicts] == [True, False, False]
    assert {"ellipsis", "all_caps", "click_here"} <= {f["rule"] for f in verdicts[2]["failures"]}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["failed"] == 2 and summary["failures_by_rule"]["exclamation"] == 1
    # what the checker passes, serving's guard passes: the same verdict object
    guard = Guard(GuardConfig.for_channel("google-rsa-headline"), known_brands=["Pilot", "HP"])
    assert guard.check(verdicts[1]["title"], HP).to_dict()["failures"] == verdicts[1]["failures"]
    assert _check(tmp_path, '{"ad_id": "p", "title": "Pilot G2 Gel Pens, 12-Pack"}\n', "t.jsonl") == 0


@pytest.mark.parametrize(("titles", "name", "channel", "message"), [
    ("ad_id,headline\np,Pilot Pens\n", "titles.csv", "google-rsa-headline", "lacks required columns"),
    ('{"ad_id": "p"}\n', "titles.jsonl", "google-rsa-headline", "lacks a required column"),
    ("ad_id,title\nzz,Pilot Pens\n", "titles.csv", "google-rsa-headline", "unknown ad id"),
    ("ad_id,title\np,Pilot Pens\n", "titles.csv", "google-ads", "unknown channel"),
])
def test_checker_bad_input_is_one_line_data_error(tmp_path, capsys, titles, name, channel, message):
    assert _check(tmp_path, titles, name, channel) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "Fix:" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_demo_constraints_take_a_channel_and_generic_stays_as_it_was():
    from app.demo_session import Constraints

    assert Constraints(max_chars=120).guard() == GuardConfig(max_chars=120)
    cfg = Constraints(max_chars=120, channel="google-rsa-headline").guard()
    assert (cfg.max_chars, cfg.channel) == (30, "google-rsa-headline")
    with pytest.raises(DataError, match="unknown channel"):
        Constraints(channel="tiktok")
