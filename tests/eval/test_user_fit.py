"""Own-vs-swapped measures (eval.metrics.user_fit) and their paired bootstrap intervals, checked by hand."""

from __future__ import annotations

import numpy as np

from creator.records.types import HistoryItem, User
from eval.metrics.bootstrap import bootstrap_ci
from eval.metrics.user_fit import segments_differ, split_future, swap_partner, user_fit

AXES = ["red", "blue", "green", "ink"]


class OneHot:
    """Each text is the one-hot of the first axis word it contains (so cosines are 0 or 1)."""

    def encode(self, texts):
        out = np.zeros((len(texts), len(AXES)))
        for i, t in enumerate(texts):
            for j, a in enumerate(AXES):
                if a in t.lower():
                    out[i, j] = 1.0
                    break
        return out


def _user(uid: str, titles: list[str]) -> User:
    return User(uid, [HistoryItem(str(i), t) for i, t in enumerate(titles)])


def test_swap_partner_is_another_user_of_the_same_ad_with_another_title():
    pairs = [("u1", "a"), ("u2", "a"), ("u3", "a"), ("u4", "b"), ("u5", "b")]
    titles = ["x", "x", "y", "z", "z"]
    partner = swap_partner(pairs, titles, seed=3)
    assert partner[0] == 2 and partner[1] == 2  # u2 has the same title as u1: never a partner
    assert partner[2] in (0, 1)
    assert partner[3] == partner[4] == -1  # ad b: one title for everyone, nothing to swap
    assert swap_partner(pairs, titles, seed=3) == partner  # deterministic


def test_future_is_held_out_of_the_history():
    earlier, future = split_future(_user("u", ["a", "b", "c"]), 1)
    assert earlier == ["a", "b"] and future == ["c"]
    assert split_future(_user("u", ["a"]), 1) == (["a"], [])


def test_own_title_fits_its_user_and_the_interval_is_right_by_hand():
    # 100 red users and 100 blue users of one ad; the red ones got the red title, the blue ones the blue one.
    # Half of the red users' held-out later item is red (own fits: cos 1 vs 0), the other half is green
    # (neither title fits: 0 - 0). So per pair: future fit own - swapped is 1 for 100 pairs, 0 for 100.
    users, pairs, titles = [], [], []
    for i in range(100):
        users.append(_user(f"r{i}", ["red pen", "red pad", "red ink" if i % 2 == 0 else "green pad"]))
        pairs.append((f"r{i}", "ad"))
        titles.append("Pens - red")
    for i in range(100):
        users.append(_user(f"b{i}", ["blue pen", "blue pad", "blue pad" if i % 2 == 0 else "green pad"]))
        pairs.append((f"b{i}", "ad"))
        titles.append("Pens - blue")
    originals = ["Pens ink"] * 200
    own = np.full(200, 0.7)
    swapped = np.r_[np.full(100, 0.5), np.full(100, 0.7)]  # red users prefer their title; blue: a tie
    fit = user_fit(OneHot(), pairs, users, titles, originals, judge_scores=(own, swapped), margin=0.01)
    f = np.round(fit["future_fit_own_minus_swapped"], 9)  # cosines carry 1e-12 of normalisation
    # "red ink" is red (first axis word), "green pad" is green
    assert f.sum() == 100 and set(np.unique(f)) == {0.0, 1.0}
    ci = bootstrap_ci(f, n_resamples=4000, seed=0)
    # mean 0.5, standard error sqrt(0.25 / 200) = 0.0354, so the 95% interval is about 0.5 +- 0.069
    assert ci.estimate == 0.5 and 0.42 < ci.low < 0.45 and 0.55 < ci.high < 0.58
    h = np.round(fit["history_fit_own_minus_swapped"], 9)
    assert np.all(h == 1.0)  # the earlier history is all red (or all blue): own 1, swapped 0
    hi = bootstrap_ci(h, seed=0)
    assert (hi.estimate, hi.low, hi.high) == (1.0, 1.0, 1.0)
    assert np.allclose(fit["history_fit_own_minus_original"], 1.0)  # the original says ink: cos 0 with red/blue
    j = fit["judge_own_vs_swapped"]
    assert j[:100].tolist() == [1.0] * 100 and j[100:].tolist() == [0.0] * 100
    jc = bootstrap_ci(j, seed=0)
    assert jc.estimate == 0.5 and jc.low > 0.4  # Adv own over swapped = (100 good - 0 bad) / 200


def test_no_partner_gives_nan_not_zero():
    users = [_user("u1", ["red a", "red b"]), _user("u2", ["blue a", "blue b"])]
    fit = user_fit(OneHot(), [("u1", "a"), ("u2", "a")], users, ["same", "same"], ["orig", "orig"])
    assert np.isnan(fit["future_fit_own_minus_swapped"]).all()
    assert bootstrap_ci(fit["future_fit_own_minus_swapped"]).n == 0


def test_segments_differ_counts_kept_pairs_of_ads_with_two_segments():
    assert segments_differ([["a", "b"], ["c", "c", "c"]]) == 2 / 5
    assert np.isnan(segments_differ([["only"]]))


def test_segment_titles_differ_more_when_interests_differ():
    from eval.metrics.user_fit import segment_title_differences

    users = {
        "a1": _user("a1", ["refill ink cartridge", "refill toner"]),
        "a2": _user("a2", ["refill ink cartridge", "refill toner"]),
        "b1": _user("b1", ["refill ink cartridge", "refill toner"]),
        "c1": _user("c1", ["sketch paper drawing", "paint brushes"]),
    }
    segs = {"a1": 0, "a2": 0, "b1": 1, "c1": 2}
    # ad x: segments 0 and 1 share interests and a title; segment 2 (art) gets its own title
    titles = {(0, "x"): "Ink - refill", (1, "x"): "Ink - refill", (2, "x"): "Ink - for drawing", (0, "y"): "only"}
    r = segment_title_differences(titles, segs, users)
    assert r["ads_with_2plus_segments"] == 1 and r["ads_whose_segments_differ"] == 1.0
    assert r["segment_pairs"] == 3
    assert r["titles_differ_when_interests_differ"] == 1.0 and r["titles_differ_when_interests_close"] == 0.0
