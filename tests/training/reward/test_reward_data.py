"""Training rows: user split, negative sampling (uniform / popularity / same-category), impression labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from creator.io import load_catalog
from training.reward.data import (
    NegativeSampler,
    history_rows,
    impression_rows,
    nearest_neighbours,
    split_users,
    user_model_split,
)


def test_split_is_by_user_disjoint_and_stable():
    ids = [f"u{i}" for i in range(2000)]
    s1 = split_users(ids, 0.1, 0.2, seed=0)
    s2 = split_users(list(reversed(ids)) + ["new"], 0.1, 0.2, seed=0)
    assert all(s1[u] == s2[u] for u in ids)  # adding or reordering users moves nobody
    share = Counter(s1.values())
    assert share["test"] / 2000 == pytest.approx(0.2, abs=0.03)
    assert share["validation"] / 2000 == pytest.approx(0.1, abs=0.03)
    assert split_users(ids, 0.1, 0.2, seed=1) != s1


def test_negatives_are_never_taken_items_nor_repeated():
    ads = [f"a{i}" for i in range(30)]
    s = NegativeSampler(ads, "uniform")
    rng = np.random.default_rng(0)
    taken = {f"a{i}" for i in range(20)}
    for _ in range(50):
        negs = s.sample("a0", taken, 8, rng)
        assert len(negs) == len(set(negs)) == 8
        assert all(ads[j] not in taken for j in negs)
    # only 10 ads are left for this user: the sampler returns what there is instead of looping forever
    assert len(s.sample("a0", taken, 15, rng)) == 10


def test_popularity_sampling_prefers_popular_ads():
    ads = [f"a{i}" for i in range(10)]
    s = NegativeSampler(ads, "popularity", counts=Counter({"a9": 1000}), alpha=1.0)
    rng = np.random.default_rng(0)
    drawn = Counter(j for _ in range(300) for j in s.sample("a0", set(), 1, rng))
    assert drawn[9] > 200  # p(a9) = 1001 / 1010


def test_same_category_uses_categories_then_neighbours():
    ads = [f"a{i}" for i in range(6)]
    cats = ["pens", "pens", "pens", "paper", "paper", "paper"]
    s = NegativeSampler(ads, "same-category", categories=cats)
    rng = np.random.default_rng(0)
    assert set(s.sample("a0", set(), 2, rng)) == {1, 2}
    # the category runs out: filled from the rest of the catalog
    assert len(s.sample("a0", set(), 4, rng)) == 4
    vecs = np.eye(6, dtype=np.float32) + np.array([[0, 0.9, 0, 0, 0, 0]] * 6, dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    nn = nearest_neighbours(vecs, 1)
    assert nn[0].tolist() == [1] and nn[1].tolist() != [1]
    with pytest.raises(ValueError, match="uniform or popularity"):
        NegativeSampler(ads, "same-category")
    with pytest.raises(ValueError, match="use one of"):
        NegativeSampler(ads, "hard")


def test_history_and_impression_rows(reward_shop):
    cat = load_catalog(reward_shop(20, impressions=True), "jsonl")
    ad_ids = sorted(cat.ads)
    s = NegativeSampler(ad_ids, "uniform")
    users = sorted(cat.users)[:5]
    rows = history_rows(cat, users, s, 3, np.random.default_rng(0), min_history=1)
    steps = sum(len(cat.users[u].history) - 1 for u in users)
    assert len(rows) == 4 * steps and sum(rows.label) == steps
    for r in range(len(rows)):  # the positive is the next item; its prefix ends just before it
        u = rows.prefixes[rows.prefix[r]]
        full = cat.users[u.user_id].history
        if rows.label[r] == 1:
            assert ad_ids[rows.cand[r]] == full[len(u.history)].item_id
        else:
            assert ad_ids[rows.cand[r]] not in {h.item_id for h in full}
    imp, skipped = impression_rows(cat, set(users), {a: i for i, a in enumerate(ad_ids)})
    assert skipped == 0 and len(imp) == 4 * 5 and sum(imp.label) == 5  # 1 clicked + 3 shown per user
    assert len(set(imp.group)) == 5


@pytest.mark.shared_data
def test_real_mind_impressions_keep_labels_and_count_missing_ads(mind_dir, caplog):
    cat = load_catalog(mind_dir, "mind")
    ad_ids = sorted(cat.ads)
    with caplog.at_level("WARNING"):
        rows, skipped = impression_rows(cat, set(cat.users), {a: i for i, a in enumerate(ad_ids)})
    usable = sum(1 for i in cat.impressions if i.ad_id in cat.ads)
    assert len(rows) == usable and skipped == len(cat.impressions) - usable
    assert skipped == 0 or "impressions skipped" in caplog.text  # never a silent drop
    assert set(rows.label) <= {0.0, 1.0}


@pytest.mark.shared_data
def test_real_amazon_rows_respect_histories(amazon_dir):
    cat = load_catalog(amazon_dir, "amazon2018")
    ad_ids = sorted(cat.ads)
    users = sorted(cat.users)[:50]
    rows = history_rows(cat, users, NegativeSampler(ad_ids, "uniform"), 8, np.random.default_rng(0))
    pos = [r for r in range(len(rows)) if rows.label[r] == 1]
    assert len(rows) == 9 * len(pos) > 0
    for r in range(len(rows)):
        full = cat.users[rows.prefixes[rows.prefix[r]].user_id].history
        if rows.label[r] == 0:
            assert ad_ids[rows.cand[r]] not in {h.item_id for h in full}


def test_with_a_user_model_the_split_is_the_user_models(tmp_path):
    """Held-out users of the reward model must be held out of the user model too (else they leak)."""
    from training.encoders.ranking import split_users as encoder_split

    ids = [f"u{i}" for i in range(500)]
    run = tmp_path / "encoders"
    (run / "user_model").mkdir(parents=True)
    (run / "resolved_config.yaml").write_text("validation_fraction: 0.2\ntest_fraction: 0.3\nseed: 5\n")
    expected = encoder_split(ids, validation=0.2, test=0.3, seed=5)
    assert user_model_split(run, ids) == expected
    assert user_model_split(run / "user_model", ids) == expected  # the user_model folder itself
    assert expected != split_users(ids, 0.2, 0.3, seed=5)  # the two hashes differ: users would leak
    assert user_model_split(tmp_path / "nowhere", ids) is None


def test_title_rewrites_add_nothing_and_never_repeat_the_title():
    from creator.records.types import Ad
    from training.reward.data import title_rewrites

    ad = Ad("p", "Pilot G2 Gel Pens, Fine Point, Black, 12 Count",
            selling_points=["Smooth writing for busy teachers, every day", "12", "Retractable and refillable design"])
    rw = title_rewrites(ad, 4)
    # the trimmed title is the title itself (it fits), so it is left out; then "title - hook", "hook: title"
    assert rw == ["Pilot G2 Gel Pens, Fine Point, Black, 12 Count - Smooth writing for busy teachers",
                  "Smooth writing for busy teachers: Pilot G2 Gel Pens, Fine Point, Black, 12 Count",
                  "Pilot G2 Gel Pens, Fine Point, Black, 12 Count - Retractable and refillable design",
                  "Retractable and refillable design: Pilot G2 Gel Pens, Fine Point, Black, 12 Count"]
    assert title_rewrites(ad, 2) == rw[:2]
    source = set((ad.title + " " + " ".join(ad.selling_points)).replace(",", " ").replace(":", " ").split())
    for t in rw:
        assert set(t.replace(",", " ").replace(":", " ").replace(" - ", " ").split()) <= source, t
    assert any("Smooth writing for busy teachers" in t for t in rw)  # a hook from a selling point
    assert not any(t.endswith(" - 12") for t in rw)  # "12" is no benefit (creator.records.rewrite.good_hook)
    assert title_rewrites(Ad("q", "Stapler"), 4) == []  # nothing to add, nothing to trim


def test_rows_get_their_own_ads_rewrites_at_the_asked_share():
    import torch

    from creator.records.types import Ad, HistoryItem, User
    from creator.reward.net import RewardConfig
    from training.reward.data import ClickRows
    from training.reward.evaluate import RowTensors

    texts = ["a", "b", "a1", "a2", "h"]
    index = {t: i for i, t in enumerate(texts)}
    ads = [Ad("A", "a"), Ad("B", "b")]
    user = User("u", [HistoryItem("x", "h")])
    n = 2000
    rows = ClickRows(prefixes=[user], prefix=[0] * n, cand=[i % 2 for i in range(n)], label=[1.0] * n,
                     group=list(range(n)))
    rt = RowTensors(rows, torch.zeros(len(texts), 4), index, ads, RewardConfig(item_dim=4),
                    np.array([0, 1]), None)
    rewrites = [np.array([2, 3]), np.array([], dtype=np.int64)]  # ad B has none
    assert rt.cand_text.tolist()[:2] == [0, 1]
    rt.rewrite(rewrites, 0.5, np.random.default_rng(0))
    got = rt.cand_text.numpy()
    a_rows, b_rows = got[0::2], got[1::2]
    assert set(a_rows) == {0, 2, 3} and (a_rows != 0).mean() == pytest.approx(0.5, abs=0.05)
    assert (b_rows == 1).all()  # no rewrite: the ad's own title
    rt.rewrite(rewrites, 1.0, np.random.default_rng(1))
    assert set(rt.cand_text.numpy()[0::2]) == {2, 3}
    assert rt.batch(torch.arange(4))["lengths"].tolist()[0] == [2.0, 1.0]  # len("a1"), 1 word


def test_segment_report_splits_requests_and_scores_each_segment_on_its_own_rows():
    from creator.records.types import HistoryItem, User
    from training.reward.data import ClickRows
    from training.reward.evaluate import segment_report

    h = [HistoryItem(f"h{i}", f"item {i}") for i in range(8)]
    rows = ClickRows(prefixes=[User("u", h[:1]), User("v", h[:7]), User("w", [HistoryItem("a", "A")])])
    # request 0: positive "a" (25 training positives), history 1, ranked above both negatives
    # request 1: positive "b" (2), history 7, ranked between its negatives
    # request 2: positive "a", a repeat of the history, history 1, ranked last
    for g, (p, cands, labels) in enumerate(
        [(0, [0, 2, 3], [1, 0, 0]), (1, [1, 2, 3], [1, 0, 0]), (2, [0, 2, 3], [1, 0, 0])]
    ):
        for c, y in zip(cands, labels, strict=True):
            rows.prefix.append(p)
            rows.cand.append(c)
            rows.label.append(float(y))
            rows.group.append(g)
    scores = np.array([0.9, 0.1, 0.2, 0.5, 0.3, 0.7, 0.0, 0.4, 0.6])
    rep = segment_report(rows, scores, Counter({"a": 25, "b": 2}), ["a", "b", "c", "d"])
    pop = rep["by_positive_popularity"]
    assert pop["20+"] == {"requests": 2, "share": pytest.approx(2 / 3), "auc": pytest.approx(2 / 4)}
    assert pop["1-4"] == {"requests": 1, "share": pytest.approx(1 / 3), "auc": pytest.approx(1 / 2)}
    assert pop["0"] == {"requests": 0, "share": 0.0, "auc": None}
    assert rep["by_history_length"]["7+"]["requests"] == 1 and rep["by_history_length"]["1"]["requests"] == 2
    assert rep["by_repeat"]["repeat"] == {"requests": 1, "share": pytest.approx(1 / 3), "auc": 0.0}
    assert rep["by_repeat"]["new"]["auc"] == pytest.approx(7 / 8)  # pooled: 0.9 beats 4 negatives, 0.5 beats 3
