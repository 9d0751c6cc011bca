"""Click metrics against values derived by hand (and sklearn as a second opinion for AUC)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from creator.reward.metrics import auc, ece, group_auc, log_loss, paired_auc_delta, platt_apply, platt_fit


def test_auc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 beats both -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts one half
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # one positive, tied with one of two negatives and above the other -> (1 + 0.5) / 2
    assert auc([1, 0, 0], [0.3, 0.3, 0.1]) == pytest.approx(0.75)
    assert auc([1, 1], [0.2, 0.3]) is None


def test_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500) + 0.3 * y, 1)  # coarse scores: many ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_group_auc_by_hand():
    # group a: positive 0.9 beats 0.1, loses to 0.95 -> 0.5 (3 rows); group b: 0.2 > 0.1 -> 1.0 (2 rows);
    # group c has no negative and is left out. Weighted by rows: (0.5*3 + 1.0*2) / 5 = 0.7
    y = [1, 0, 0, 1, 0, 1]
    p = [0.9, 0.1, 0.95, 0.2, 0.1, 0.4]
    g = ["a", "a", "a", "b", "b", "c"]
    assert group_auc(y, p, g) == pytest.approx(0.7)


def test_log_loss_and_ece_by_hand():
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    # -(ln 0.8 + ln 0.9) / 2
    assert log_loss([1, 0], [0.8, 0.1]) == pytest.approx(-(math.log(0.8) + math.log(0.9)) / 2)
    # 2 bins. [0, .5): p = .1, .4, .35 (mean .28333), clicks 1/3 -> |.28333 - .33333| * 3/4 = .0375
    #         [.5, 1]: p = .8, click 1 -> .2 * 1/4 = .05; total .0875
    assert ece([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_bins=2) == pytest.approx(0.0875)
    assert ece([0, 1], [0.5, 0.5]) == pytest.approx(0.0)  # a 50% bin with half clicked: calibrated
    assert ece([1], [1.0]) == pytest.approx(0.0)  # p = 1 falls in the last, closed bin


def test_platt_scaling_calibrates_a_score():
    rng = np.random.default_rng(1)
    s = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2 * s - 1)))).astype(int)
    a, b = platt_fit(s, y)
    assert a == pytest.approx(2, abs=0.25) and b == pytest.approx(-1, abs=0.2)
    assert ece(y, platt_apply(s, (a, b))) < 0.03


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="differ in length"):
        auc([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 or 1"):
        auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="calibrate"):
        ece([0, 1], [-0.5, 2.0])


def test_paired_auc_delta_is_zero_for_one_judge_and_clear_for_a_better_one():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(300), 5)
    y = np.tile([1, 0, 0, 0, 0], 300)
    noisy = rng.normal(size=y.size) + 0.5 * y
    same = paired_auc_delta(y, noisy, noisy, groups, n_resamples=200)
    assert same["delta"] == 0 and same["low"] == 0 and same["high"] == 0
    assert same["a"] == pytest.approx(auc(y, noisy)) and same["n_groups"] == 300
    better = noisy + 2.0 * y  # the same judge plus a strong click signal
    d = paired_auc_delta(y, noisy, better, groups, n_resamples=200)
    assert d["b"] == pytest.approx(auc(y, better)) and d["delta"] == pytest.approx(d["b"] - d["a"])
    assert 0 < d["low"] < d["delta"] < d["high"]
    with pytest.raises(ValueError, match="one entry per row"):
        paired_auc_delta(y, noisy, noisy[:-1], groups)
