"""The demo app through its HTTP API (gradio_client), launched on 127.0.0.1 on a free port.

The app runs the real ``creator.pipeline.catalog`` and the real guard; the trained models are the test doubles
of ``tests/demo_doubles.py`` (the app labels them as such), so these tests check the app: its state,
constraints, locks, errors and export. The trained-model path is ``test_demo_artifacts.py``.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
pytest.importorskip("creator.pipeline.catalog", reason="the batch-generation pipeline is not on this branch yet")

from app.demo_catalog import load_sample, load_uploads  # noqa: E402
from app.demo_session import COLUMNS, Constraints  # noqa: E402
from creator.records.errors import DataError  # noqa: E402
from tests.demo_doubles import RecordingTrainer, launch_doubles_app  # noqa: E402

AD = "1002"  # Belkin WaveRest Gel Mouse Pad, Black (F8E262-BLK): 49 characters
FORM = {"max_chars": 120, "banned": "", "clusters": 4, "threshold": 0.0, "candidates": 3, "channel": "generic"}


@pytest.fixture(scope="module")
def trainer():
    return RecordingTrainer()


@pytest.fixture(scope="module")
def app_url(trainer):
    demo, url = launch_doubles_app(train=trainer)
    yield url
    demo.close()


@pytest.fixture()
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)  # a fresh browser-tab session per test


def rows(table) -> list[dict]:
    """The Dataframe output as dicts (gradio_client returns headers + data)."""
    return [dict(zip(table["headers"], r, strict=True)) for r in table["data"]]


def google_file(output) -> str | None:
    """The Google Ads download button's output: a file path when shown, None when hidden (an update dict)."""
    if isinstance(output, dict):
        assert output.get("visible") is not None, output
        return output.get("value") if output["visible"] else None
    return output


def generate(client, ad=AD, *, load=True, **form):
    if load:
        client.predict(api_name="/load_sample")
        client.predict(ad, api_name="/pick_ad")
    f = FORM | form
    return client.predict(ad, f["max_chars"], f["banned"], f["clusters"], f["threshold"], f["candidates"],
                          f["channel"], api_name="/generate")


def test_generate_fills_the_segments_table_map_and_export(client):
    status, _, card, table, _, plot, export, google_export = generate(client)
    got = rows(table)
    assert "Generated for **4 segments** (generic, at most 120 characters)" in status
    assert "Selling points" in card and "F8E262-BLK" in card
    assert [r["segment"] for r in got] == [0, 1, 2, 3]
    assert sum(r["users"] for r in got) == 1000  # every sample user is in exactly one segment
    for r in got:
        assert r["source"] == "personalized" and r["fact check"] == "passed"
        assert r["title"].startswith("Belkin WaveRest Gel Mouse Pad") and len(r["title"]) <= 120
        assert r["chars"] == f"{len(r['title'])}/120"  # the title's length against the channel's limit
        assert r["persona"].startswith("Buys ")
        assert re.fullmatch(r"0\.\d{3} vs 0\.\d{3} \([+-]0\.\d{3}\)", r["judge vs original"])
    assert plot is not None
    with open(export, newline="", encoding="utf-8") as fh:
        exported = list(csv.DictReader(fh))
    assert list(exported[0]) == ["ad_id", "original_title", *COLUMNS]
    assert [e["title"] for e in exported] == [r["title"] for r in got]
    assert {e["channel"] for e in exported} == {"generic"}
    assert google_file(google_export) is None  # the Google Ads file is for the Google Ads channels only
    for e in exported:
        assert float(e["lift"]) == pytest.approx(float(e["judge"]) - float(e["original_judge"]), abs=2e-4)


def test_constraints_change_the_titles(client):
    _, _, _, table, *_ = generate(client, banned="desk, office")
    for r in rows(table):
        assert "desk" not in r["title"].lower() and "office" not in r["title"].lower()
    # 30 characters: every candidate is longer, so every segment falls back to the original title
    status, _, _, table, *_ = generate(client, load=False, max_chars=30)
    got = rows(table)
    assert "0 personalized" in status
    fell_back = ("fallback", "failed: too_long; original served")
    assert {r["chars"] for r in got} == {"49/30"}  # the original title, longer than the limit
    assert {(r["source"], r["fact check"]) for r in got} == {fell_back}
    assert {r["title"] for r in got} == {"Belkin WaveRest Gel Mouse Pad, Black (F8E262-BLK)"}
    # the match threshold prunes (segment, ad) pairs: at 1.0 none survives, so the original is served
    _, _, _, table, *_ = generate(client, load=False, threshold=1.0)
    pruned = rows(table)
    assert all(r["source"] == "original" and r["fact check"].startswith("pruned (match 0.") for r in pruned)
    # K changes the segments
    _, _, _, table, *_ = generate(client, load=False, clusters=2)
    assert len(rows(table)) == 2


def test_channel_sets_limit_rules_fallback_and_google_ads_export(client):
    from creator.guard.check import Guard, GuardConfig

    # lock segment 0 under generic: a title locked for another channel is regenerated under this one
    generate(client)
    client.predict(0, api_name="/lock")
    status, _, _, table, _, _, export, google_export = generate(client, load=False, channel="google-rsa-headline")
    got = rows(table)
    assert "(google-rsa-headline, at most 30 characters)" in status
    assert "Segments 0 were locked for another channel and were regenerated" in status
    # every double's title (ad title + phrase) is too long and so is the original: a shortened title is served
    for r in got:
        assert r["source"] == "shortened" and r["chars"] == f"{len(r['title'])}/30" and len(r["title"]) <= 30
        assert r["fact check"] == "failed: too_long; shortened title served"
        assert r["locked"] == ""
    with open(export, newline="", encoding="utf-8") as fh:
        assert {e["channel"] for e in csv.DictReader(fh)} == {"google-rsa-headline"}
    # the Google Ads Editor file: one row per segment, the served title first, all grounded and guard-passing
    with open(google_file(google_export), newline="", encoding="utf-8") as fh:
        uploaded = list(csv.DictReader(fh))
    assert [u["Ad group"] for u in uploaded] == [f"segment {r['segment']}" for r in got]
    headline_guard = Guard(GuardConfig.for_channel("google-rsa-headline"))
    description_guard = Guard(GuardConfig.for_channel("google-rsa-description"))
    ad = load_sample().ads[AD]
    for u, r in zip(uploaded, got, strict=True):
        heads = [u[f"Headline {i}"] for i in range(1, 16) if u[f"Headline {i}"]]
        descs = [u[f"Description {i}"] for i in range(1, 5) if u[f"Description {i}"]]
        assert heads[0] == r["title"] and len(heads) >= 3 and len(descs) >= 2
        assert all(headline_guard.check(h, ad).passed for h in heads)
        assert all(description_guard.check(d, ad).passed for d in descs)
    # back to generic: no Google Ads file
    *_, google_export = generate(client, load=False)
    assert google_file(google_export) is None


def test_lock_keeps_a_title_through_regenerate_all(client):
    _, _, _, table, *_ = generate(client, candidates=1)
    before = rows(table)
    client.predict(0, api_name="/lock")
    seen = {r["title"] for r in before}
    for _ in range(3):  # new seeds each time: some unlocked title changes, the locked one never does
        status, _, _, table, *_ = client.predict(*FORM.values(), api_name="/regenerate_all")
        after = rows(table)
        assert status.startswith("Regenerated segments 1, 2, 3")
        assert after[0]["title"] == before[0]["title"] and after[0]["locked"] == "yes"
        assert [r["users"] for r in after] == [r["users"] for r in before]  # the segments stay put
        seen |= {r["title"] for r in after[1:]}
    assert len(seen) > len({r["title"] for r in before})
    status, *_ = client.predict(0, *FORM.values(), api_name="/regenerate")
    assert "locked" in status and "unlock" in status


def test_bad_upload_shows_the_cli_error_not_a_traceback(client, tmp_path):
    from gradio_client import handle_file

    ads = tmp_path / "ads.jsonl"
    ads.write_text(json.dumps({"ad_id": "1", "title": "Stapler", "description": "Staples 20 sheets."}) + "\n")
    users = tmp_path / "users.jsonl"
    users.write_text(json.dumps({"user_id": "u1", "history": []}) + "\n"
                     + json.dumps({"user_id": "u2", "history": "pens"}) + "\n")
    status, *_ = client.predict([handle_file(str(ads)), handle_file(str(users))], api_name="/load_upload")
    assert "users.jsonl:2" in status and "history" in status and "Fix:" in status
    assert "Traceback" not in status and "/tmp" not in status
    status, *_ = client.predict([handle_file(str(ads))], api_name="/load_upload")
    assert "the upload has no users" in status
    # a good upload then works end to end
    good = {"user_id": "u1", "history": [{"item_id": "9", "title": "Paper clips"}]}
    users.write_text(json.dumps(good) + "\n")
    status, *_ = client.predict([handle_file(str(ads)), handle_file(str(users))], api_name="/load_upload")
    assert "1 ads, 1 users" in status


def test_actions_out_of_order_explain_what_to_do(client):
    status, *_ = client.predict(*FORM.values(), api_name="/regenerate_all")
    assert "load a catalog first" in status
    client.predict(api_name="/load_sample")
    status, *_ = client.predict(0, api_name="/lock")
    assert "generate first" in status


def test_train_button_runs_the_first_start_path_with_progress(client, trainer):
    status, *_ = client.predict(api_name="/train")
    assert status == "Models ready (trained: stand-in stage)."
    assert trainer.fractions == [0.0, 0.5, 1.0]


def test_upload_checks(tmp_path):
    bad = tmp_path / "ads.xlsx"
    bad.write_text("x")
    with pytest.raises(DataError, match="unsupported file type.*Fix: export"):
        load_uploads([bad])
    with pytest.raises(DataError, match="no file was uploaded"):
        load_uploads([])


def test_constraints_validate_with_the_fix():
    assert Constraints.from_form(80, "free, cheap\nsale", 3, 0.2, 2).banned_words == ["free", "cheap", "sale"]
    with pytest.raises(ValueError, match="clusters K must be between 1 and 64"):
        Constraints(clusters=0)
    with pytest.raises(ValueError, match="between 10 and 300"):
        Constraints(max_chars=5)
    assert Constraints(match_threshold=0.0).pipeline(3).match_threshold is None  # 0 keeps every pair
    # the channel caps the slider's limit and names the guard's rules
    headline = Constraints.from_form(120, "", 3, 0.0, 2, "google-rsa-headline")
    assert headline.limit == 30 and headline.guard().max_chars == 30
    assert headline.guard().channel == "google-rsa-headline"
    assert Constraints(max_chars=80).limit == 80 and Constraints(max_chars=20, channel="meta-headline").limit == 20
    with pytest.raises(DataError, match="unknown channel"):
        Constraints.from_form(120, "", 3, 0.0, 2, "tiktok")


def test_cli_registers_demo_and_help_has_an_example(capsys):
    from app.cli import COMMANDS, main

    assert COMMANDS["demo"][0] == "app.demo:main"
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "hllm-creator demo --data" in out and "--auth" in out and "127.0.0.1" in out
    assert Path(__file__).resolve().parents[2].joinpath("scripts", "install_browser.sh").exists()
