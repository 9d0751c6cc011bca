"""The quality benchmark's arithmetic: intervals over changed titles only, the rule of three, the table rows
(the evaluation it reads is tested in ``test_eval_report.py``)."""

from __future__ import annotations

import json

import pytest

from benchmarks import quality
from benchmarks.quality import ci, on_changed, rule_of_three


def test_on_changed_keeps_only_pairs_whose_title_changed():
    got = on_changed([1.0, 5.0, 3.0, float("nan")], ["a", "b", "c", "d"], ["a", "x", "y", "z"])
    assert got["n"] == 2 and got["estimate"] == pytest.approx(4.0)  # 5 and 3; the NaN is left out
    assert got["low"] >= 3.0 and got["high"] <= 5.0
    assert on_changed([1.0], ["a"], ["a"]) is None  # nothing changed: no interval


def test_rule_of_three_and_exact_bounds():
    assert rule_of_three(0, 300) == "[0, 0.0100]"
    low, high = (float(x) for x in rule_of_three(5, 100).strip("[]").split(", "))
    assert 0.015 < low < 0.02 and 0.10 < high < 0.12  # Clopper-Pearson 95% for 5/100: 0.0164 to 0.1128


def test_ci_formats_differences_with_their_sign_and_rates_without():
    d = {"estimate": -0.0386, "low": -0.05, "high": -0.0266, "n": 2000}
    assert ci(d) == ("-0.039", "[-0.050, -0.027]", "2000")
    assert ci({"estimate": 0.93, "low": 0.91, "high": 0.94, "n": 10}, signed=False) == ("0.930", "[0.910, 0.940]", "10")
    assert ci(None) == ("-", "-", "-")


def test_the_first_point_baseline_appends_the_ads_first_usable_selling_point_for_everyone():
    from benchmarks.quality import first_point_title
    from creator.records.types import Ad

    ad = Ad("1", "Sharpie Permanent Markers, Fine Point, Black, 12 Count",
            selling_points=["Quick-drying ink that resists water and fading", "Writes on paper, plastic and metal"])
    got = first_point_title(ad)
    assert got.startswith("Sharpie Permanent Markers") and " - " in got and "Quick-drying" in got
    assert len(got) <= len(ad.title) + 40
    assert first_point_title(Ad("2", "Plain Stapler")) == "Plain Stapler"  # no point: the title itself


def test_judge_rows_read_each_judges_held_out_auc_and_its_worst_corruption(tmp_path):
    def metrics(folder, auc, kinds):
        folder.mkdir()
        pairs = {k: {"pairs": 10, "real_beats_corrupted": v} for k, v in kinds.items()}
        pairs["all"] = {"pairs": 10 * len(kinds), "real_beats_corrupted": sum(kinds.values()) / len(kinds)}
        (folder / "metrics.json").write_text(json.dumps(
            {"results": {"sampled_uniform": {"reward": {"auc": auc, "n": 50}}}, "corruptions": pairs}))
        return folder

    after = metrics(tmp_path / "after", 0.81, {"shuffled": 0.99, "cut_hook": 0.93})
    before = metrics(tmp_path / "before", 0.82, {"shuffled": 0.6, "cut_hook": 0.5})
    rows = quality.judge_rows(after, before)
    assert rows[0][1:] == ("0.8100", "-", "50")
    assert rows[1][0].endswith("worst: cut_hook)") and rows[1][1:] == ("0.960", "worst 0.930", "20")
    assert rows[2][0].startswith("  judge before the fix") and rows[3][1:] == ("0.550", "worst 0.500", "20")
    assert quality.judge_rows(after, tmp_path / "missing") == rows[:2]  # no judge trained before: its rows left out
