"""The eval report end to end on a tiny hand-made catalog: numbers, files, CLI, and the HTML in a browser.

The catalog: 4 ads x 6 users = 24 pairs. Systems: ``careful`` (original + a grounded phrase),
``inventive`` (claims a 24-pack no ad states: every title ungrounded), ``seg`` (keyed by segment,
2 segments, via a user -> segment table). A bag-of-words encoder stands in for MiniLM so the
numbers are exact and fast; the serving guard is the real one.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from creator.io import write_records
from creator.records.errors import DataError
from creator.records.types import Ad, Creative, HistoryItem, User
from eval.config import EvalConfig
from eval.render import write_report
from eval.report import evaluate, main
from eval.systems import System, common_pairs, read_segments

ADS = [
    Ad("a1", "Gel Pens, Black, 12-Pack", brand="Pilot", category="pens"),
    Ad("a2", "Spiral Notebook, 100 Sheets", brand="Mead", category="paper"),
    Ad("a3", "Desk Stapler, Full Strip", brand="Swingline", category="desk"),
    Ad("a4", "Sticky Notes, 3x3 Inch", brand="Post-it", category="paper"),
]
HIST = {
    "u1": ["watercolor paint set", "sketch pad"],
    "u2": ["office chair", "desk lamp"],
    "u3": ["watercolor brushes"],
    "u4": ["printer paper", "binder clips"],
    "u5": ["sketch pencils"],
    "u6": ["file folders", "label maker"],
}
SEGMENTS = {"u1": 0, "u3": 0, "u5": 0, "u2": 1, "u4": 1, "u6": 1}


class BagOfWords:
    name, dim = "bow", 4096

    def encode(self, texts, *, batch_size=None, progress=False):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return np.where(n > 0, out / np.maximum(n, 1e-12), 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny")
    write_records(ADS, d / "catalog" / "ads.jsonl")
    write_records(
        [User(u, [HistoryItem(f"h{u}{i}", t) for i, t in enumerate(ts)]) for u, ts in HIST.items()],
        d / "catalog" / "users.jsonl",
    )
    careful = [
        Creative(a.ad_id, f"{a.title} for Sketch Artists", "personalized", user_id=u)
        for u in HIST
        for a in ADS
    ]
    inventive = [
        Creative(a.ad_id, f"{a.title.split(',')[0]}, 24-Pack", "personalized", user_id=u)
        for u in HIST
        for a in ADS
    ]
    seg = [
        Creative(
            a.ad_id, f"{a.title} for {'Artists' if s == 0 else 'the Office'}", "personalized", segment_id=s
        )
        for s in (0, 1)
        for a in ADS
    ]
    write_records(careful, d / "careful.jsonl")
    write_records(inventive, d / "inventive.csv")
    write_records(seg, d / "seg.parquet")
    write_records([{"user_id": u, "segment_id": s} for u, s in SEGMENTS.items()], d / "segments.jsonl")
    return {"dir": d, "catalog": d / "catalog"}


def _config(tiny, **kw) -> EvalConfig:
    d = tiny["dir"]
    return EvalConfig(
        systems={
            "careful": str(d / "careful.jsonl"),
            "inventive": str(d / "inventive.csv"),
            "seg": str(d / "seg.parquet"),
        },
        ads=str(tiny["catalog"]),
        segments={"seg": str(d / "segments.jsonl")},
        channels=["headline"],
        banned_words=["office"],
        out=str(d / "out"),
        bootstrap=200,
        **kw,
    )


@pytest.fixture(scope="module")
def evaluated(tiny):
    cfg = _config(tiny, judge="similarity")
    report, arrays = evaluate(cfg, encoder=BagOfWords())
    paths = write_report(report, arrays, cfg.out)
    return report, arrays, paths


def test_numbers_by_hand(evaluated):
    report, arrays, _ = evaluated
    s = report["systems"]
    assert report["n_pairs"] == 24 and list(s) == ["original", "careful", "inventive", "seg"]
    # 'inventive' claims a 24-pack on every ad; no ad states 24 -> all 24 titles ungrounded.
    assert s["inventive"]["factual_error_rate"]["estimate"] == 1.0
    assert (
        s["careful"]["factual_error_rate"]["estimate"]
        == 0.0
        == s["original"]["factual_error_rate"]["estimate"]
    )
    # headline (30 chars): originals are 24, 27, 25, 21 chars -> all fit; "+ for Sketch Artists" -> none fit.
    assert s["original"]["compliant"]["estimate"] == 1.0 and s["careful"]["compliant"]["estimate"] == 0.0
    # 'seg' says "the Office" (banned here) to segment 1 = u2, u4, u6: 12 of the 24 pairs.
    assert s["seg"]["compliance"]["banned_word_rate"] == 0.5
    # The original against itself: lift exactly 0, judge lift exactly 0.
    assert (
        s["original"]["similarity_lift"]["estimate"] == 0.0 and s["original"]["judge_lift"]["estimate"] == 0.0
    )
    # (u5, a1): profile = ("sketch" + "pencils") / sqrt(2); the original shares no word (cos 0); the careful
    # title has 7 words, one shared ("sketch"): cos = 1 / (sqrt(7) * sqrt(2)) = 0.2673.
    i = arrays["pairs"].index(("u5", "a1"))
    assert arrays["sim_lift"]["careful"][i] == pytest.approx(0.2673, abs=1e-4)
    # Segment system: one generation call per (segment, ad) = 8; per-user systems one per pair = 24.
    assert s["seg"]["calls"] == 8 and s["careful"]["calls"] == 24 and s["original"]["calls"] == 0
    # Its two titles per ad differ ("for Artists" vs "for the Office"): spread > 0; 'careful' gives every user
    # of an ad the same words: spread 0 (up to float error).
    assert s["seg"]["segment_spread"] > 0.05 and s["careful"]["segment_spread"] == pytest.approx(
        0.0, abs=1e-6
    )
    assert s["careful"]["diversity"]["ads_with_variants"] == 4
    # The Adv matrix agrees with the per-system Adv vs the original and is antisymmetric.
    m = report["adv_matrix"]
    assert m["careful"]["original"] == s["careful"]["adv_vs_original"]["adv"] == -m["original"]["careful"]
    assert report["per_group"]["key"] == "category" and set(report["per_group"]["groups"]) == {
        "pens",
        "paper",
        "desk",
    }


def test_worst_examples_name_the_offending_span(evaluated):
    report, _, _ = evaluated
    fact = [w for w in report["worst"] if w["metric"] == "factuality" and w["system"] == "inventive"]
    assert len(fact) == 5 and all("24" in w["detail"] for w in fact)
    comp = [w for w in report["worst"] if w["metric"] == "compliance" and w["system"] == "seg"]
    assert any("banned word 'office'" in w["detail"] for w in comp)


def test_files_written(evaluated):
    report, _, paths = evaluated
    data = json.loads(paths[0].read_text())
    assert data["systems"]["inventive"]["fact_failures_by_rule"] == {"ungrounded_number": 24}
    md = paths[1].read_text()
    assert "| inventive |" in md and "Worst examples" in md and "judge: minilm-history-similarity" in md
    html = paths[2].read_text()
    # judge distribution, per-category, calls vs quality, segment map: 4 embedded PNGs, no external resource
    assert html.count("src='data:image/png;base64,") == 4
    assert "http://" not in html and "https://" not in html


def test_references_with_copy_baseline(tiny):
    refs = tiny["dir"] / "refs.jsonl"
    write_records(
        [{"user_id": "u1", "ad_id": "a1", "title": "Gel Pens, Black, 12-Pack for Sketch Artists"}], refs
    )
    report, _ = evaluate(_config(tiny, references=str(refs)), encoder=BagOfWords(), judge=None)
    assert report["n_reference_pairs"] == 1 and "rouge-score" in report["rouge_scorer"]
    assert report["systems"]["careful"]["reference"]["vs_reference"]["rouge1"] == pytest.approx(100.0)
    # copy-the-original on the same pair (tokens "gel pens black 12 pack" vs 8 reference tokens):
    # P 5/5, R 5/8 -> F = 2 * (5/8) / (13/8) = 10/13 = 76.92
    copy = report["systems"]["careful"]["reference"]["copy_original_vs_reference"]["rouge1"]
    assert copy == pytest.approx(76.92, abs=0.01)
    assert "judge_score" not in report["systems"]["careful"]


def test_common_pairs_reports_what_it_leaves_out():
    a = System.from_creatives("a", [Creative("x", "t", "personalized", user_id=u) for u in ("1", "2", "3")])
    b = System.from_creatives("b", [Creative("x", "t", "personalized", user_id=u) for u in ("2", "3")])
    pairs, cov = common_pairs([a, b])
    assert pairs == [("2", "x"), ("3", "x")] and cov["a"]["left_out"] == 1 and cov["b"]["left_out"] == 0


def test_bad_systems_fail_with_a_fix(tiny, tmp_path):
    with pytest.raises(DataError, match="no user -> segment table"):
        System.from_creatives("s", [Creative("x", "t", "personalized", segment_id=0)])
    with pytest.raises(DataError, match="two titles"):
        System.from_creatives(
            "s",
            [
                Creative("x", "t", "personalized", user_id="1"),
                Creative("x", "u", "personalized", user_id="1"),
            ],
        )
    bad = tmp_path / "segments.csv"
    bad.write_text("user_id,segment_id\nu1,zero\n")
    with pytest.raises(DataError, match="segments.csv:2.*segment_id"):
        read_segments(bad)
    wrong = tmp_path / "wrong.jsonl"
    write_records([Creative("nope", "t", "personalized", user_id="u1")], wrong)
    cfg = _config(tiny)
    cfg.systems["wrong"] = str(wrong)
    with pytest.raises(DataError, match="names ad 'nope'"):
        evaluate(cfg, encoder=BagOfWords(), judge=None)
    with pytest.raises(ValueError, match="unknown systems"):
        EvalConfig(systems={"a": "x"}, ads="y", segments={"b": "z"})


def test_cli_end_to_end(tiny, tmp_path, monkeypatch, minilm, capsys):
    # The real MiniLM (shared session fixture, so it is loaded once) through the command line.
    import creator.modeling.item_encoder as item_encoder

    monkeypatch.setattr(item_encoder, "SentenceItemEncoder", lambda *a, **k: minilm)
    d, out = tiny["dir"], tmp_path / "cli"
    rc = main(
        [
            "--ads",
            str(tiny["catalog"]),
            "--systems",
            f"careful={d / 'careful.jsonl'}",
            "--systems",
            f"seg={d / 'seg.parquet'}",
            "--segments",
            f"seg={d / 'segments.jsonl'}",
            "--judge",
            "similarity",
            "--channels",
            "headline",
            "push:40:6",
            "--calls",
            "seg=2",
            "--bootstrap",
            "100",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert {p.name for p in out.iterdir()} >= {
        "report.json",
        "report.md",
        "report.html",
        "resolved_config.yaml",
    }
    data = json.loads((out / "report.json").read_text())
    assert data["systems"]["seg"]["calls"] == 2 and data["config"]["channels"] == ["headline", "push:40:6"]
    assert "| careful |" in capsys.readouterr().out
    assert main(["--ads", "x"]) == 2  # no systems: an error message, not a traceback


def test_yaml_config_then_flags(tiny, tmp_path):
    from creator.io.hllm import write_hllm_parquet
    from eval.report import parse_config

    cfg_file = tmp_path / "eval.yaml"
    cfg_file.write_text(
        f"ads: {tiny['catalog']}\nsystems:\n  careful: {tiny['dir'] / 'careful.jsonl'}\n"
        "channels: [headline]\nbootstrap: 50\n"
    )
    cfg = parse_config(
        ["--config", str(cfg_file), "--bootstrap", "80", "--max-pairs", "0", "--systems", "more=x.jsonl"]
    )
    assert cfg.bootstrap == 80 and cfg.max_pairs is None and cfg.channels == ["headline"]
    assert set(cfg.systems) == {"careful", "more"}
    # References from an HLLM-Creator parquet (its ``response`` column), keyed by its uid / item_id columns.
    row = {
        "user_profile": {},
        "original_title": ADS[0].title,
        "original_description": "",
        "prompt1": "p",
        "prompt2": "p",
        "response": "Gel Pens for Sketch Artists",
        "title_list": ["sketch pencils"],
        "item_id_list": ["hu50"],
        "uid": "u5",
        "item_id": "a1",
    }
    refs = write_hllm_parquet([row], tmp_path / "refs.parquet")
    report, _ = evaluate(_config(tiny, references=str(refs)), encoder=BagOfWords(), judge=None)
    assert report["n_reference_pairs"] == 1


@pytest.mark.browser
def test_html_renders_with_its_plots_in_chromium(evaluated):
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no /usr/bin/chromium (install with: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    html_path = evaluated[2][2]
    os.environ.setdefault("PLAYWRIGHT_BROWSERS_PATH", "0")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(html_path.resolve().as_uri())
        sizes = page.eval_on_selector_all("img.plot", "els => els.map(e => [e.complete, e.naturalWidth])")
        tables = page.eval_on_selector_all("table", "els => els.length")
        title = page.title()
        browser.close()
    assert title == "Evaluation report" and tables >= 3 and not errors
    assert len(sizes) == 4 and all(done and width > 100 for done, width in sizes)


def test_side_by_side_sheet_per_system(evaluated, tiny, tmp_path):
    report, _, paths = evaluated
    sheets = report["side_by_side"]
    assert list(sheets) == ["careful", "inventive", "seg"]  # every system but the original
    ads = {a.ad_id: a for a in ADS}
    for sheet in sheets.values():
        # 24 pairs, every system changes every title: 24 to draw from, 24 < 30 so all of them are shown
        assert sheet["drawn_from"] == 24 and len(sheet["pairs"]) == 24
        for r in sheet["pairs"]:
            assert r["original"] == ads[r["ad_id"]].title and r["served"] != r["original"]
            assert "judge_served" in r and "judge_original" in r
    assert all(r["facts"] != "ok" for r in sheets["inventive"]["pairs"])  # the 24-pack claim, named
    assert all(r["facts"] == "ok" for r in sheets["careful"]["pairs"])
    md = next(p for p in paths if p.suffix == ".md").read_text()
    assert "## Side by side: careful (24 random pairs of 24" in md and "Sketch Artists" in md
    # fewer pairs than the pool: a seeded random draw, the same twice; restricted to the held-out users' pairs
    held = tmp_path / "heldout.txt"
    held.write_text("u1\nu4\n")
    cfg = _config(tiny, judge=None, sheet_pairs=5, sheet_users=str(held))
    one = evaluate(cfg, encoder=BagOfWords(), judge=None)[0]["side_by_side"]["careful"]
    two = evaluate(cfg, encoder=BagOfWords(), judge=None)[0]["side_by_side"]["careful"]
    assert one == two and one["drawn_from"] == 8 and len(one["pairs"]) == 5
    assert {r["user_id"] for r in one["pairs"]} <= {"u1", "u4"} and "judge_served" not in one["pairs"][0]
    with pytest.raises(ValueError, match="sheet_users"):
        _config(tiny, sheet_users=str(tmp_path / "missing.txt"))
