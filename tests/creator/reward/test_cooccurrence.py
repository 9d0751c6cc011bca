"""Co-occurrence features of the judge: hand-checked values, leave-one-out, training users only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from creator.io import load_catalog
from creator.reward.cooccurrence import FEATURES, ItemCooccurrence
from training.reward.data import ClickRows, collab_rows, split_users, train_cooccurrence

# three users; "p" is taken by all, "q" and "r" by two, "s" by one
TOY = [["p", "q", "r"], ["q", "p"], ["r", "p", "s"]]


def feats(values: np.ndarray) -> dict[str, float]:
    return dict(zip(FEATURES, values.tolist(), strict=True))


def test_features_match_hand_counts():
    """History [q, r], candidate p.

    takers of p: 3 -> taken = log 4. Users with both (q, p): users 0 and 1 = 2; (r, p): users 0 and 2 = 2.
    co_max = log 3, co_sum = log 5, co_share = 2/2, co_last (r) = log 3,
    co_cond = max(2 / takers(q) = 2/2, 2 / takers(r) = 2/2) = 1.
    Candidate s with the same history: takers 1; (q, s) = 0, (r, s) = 1 (user 2) -> co_max = log 2,
    co_sum = log 2, share 1/2, co_last log 2, co_cond = 1/2.
    """
    co = ItemCooccurrence.from_histories(TOY)
    assert co.n_users == 3 and co.count("q", "p") == 2 and co.count("p", "p") == 0
    got = co.features(["q", "r"], ["p", "s", "unknown", None])
    p, s = feats(got[0]), feats(got[1])
    assert p == pytest.approx(
        {"taken": math.log(4), "co_max": math.log(3), "co_sum": math.log(5), "co_share": 1.0,
         "co_last": math.log(3), "co_cond": 1.0, "known": 1.0}, rel=1e-6
    )
    assert s == pytest.approx(
        {"taken": math.log(2), "co_max": math.log(2), "co_sum": math.log(2), "co_share": 0.5,
         "co_last": math.log(2), "co_cond": 0.5, "known": 1.0}, rel=1e-6
    )
    assert not got[2:].any()  # an ad no training user took, or no ad at all: cold, all zeros
    assert not co.features([], ["p"])[0, 1:6].any()  # empty history: only the popularity prior


def test_leave_one_out_equals_counts_without_that_user():
    """A counted user's own row sees exactly the counts of the other users."""
    co = ItemCooccurrence.from_histories(TOY)
    for i, hist in enumerate(TOY):
        others = ItemCooccurrence.from_histories(TOY[:i] + TOY[i + 1 :])
        for t in range(1, len(hist)):
            cands = ["p", "q", "r", "s"]
            np.testing.assert_allclose(
                co.features(hist[:t], cands, own=hist), others.features(hist[:t], cands), atol=1e-6
            )


def test_repeat_of_a_history_item_never_goes_negative():
    co = ItemCooccurrence.from_histories([["a", "b", "a"]])
    got = co.features(["a", "b"], ["a"], own=["a", "b", "a"])  # the user's only item, taken again
    assert not got.any()  # leave-one-out leaves no taker: cold, not negative counts


def test_save_and_load_round_trip(tmp_path):
    co = ItemCooccurrence.from_histories(TOY)
    back = ItemCooccurrence.load(co.save(tmp_path / "co.npz"))
    cands = ["p", "q", "r", "s", "x"]
    np.testing.assert_array_equal(back.features(["q", "r"], cands), co.features(["q", "r"], cands))
    assert back.n_users == 3
    with pytest.raises(FileNotFoundError, match="train-reward"):
        ItemCooccurrence.load(tmp_path / "missing.npz")


def test_counts_use_training_users_only(reward_shop):
    """Held-out users' histories never reach the counts: the test fails if test users leak in."""
    data = reward_shop(80)
    cat = load_catalog(data, "jsonl")
    split = split_users(sorted(cat.users), 0.15, 0.2, seed=0)
    train_ids = [u for u in sorted(cat.users) if split[u] == "train"]
    held_out = [u for u in sorted(cat.users) if split[u] != "train"]
    assert held_out
    co, own = train_cooccurrence(cat, train_ids)
    assert co.n_users == len(train_ids) and set(own) == set(train_ids)
    expected = ItemCooccurrence.from_histories([[h.item_id for h in cat.users[u].history] for u in train_ids])
    leaky = ItemCooccurrence.from_histories([[h.item_id for h in u.history] for u in cat.users.values()])
    assert co.users.tolist() == expected.users.tolist() and co.pairs == expected.pairs
    assert co.users.sum() < leaky.users.sum()  # the held-out users' items are not in the counts

    # rows: a held-out user is scored with everyone's counts, a training user's own pairs are removed
    ad_ids = sorted(cat.ads)
    u_train, u_test = cat.users[train_ids[0]], cat.users[held_out[0]]
    nxt = ad_ids.index(u_train.history[1].item_id)
    rows = ClickRows(
        prefixes=[type(u_train)(u_train.user_id, u_train.history[:1]), u_test],
        prefix=[0, 1],
        cand=[nxt, nxt],
        label=[1.0, 0.0],
        group=[0, 1],
    )
    got = collab_rows(co, rows, ad_ids, own, max_history=20)
    first = u_train.history[0].item_id
    loo = ItemCooccurrence.from_histories(
        [[h.item_id for h in cat.users[u].history] for u in train_ids if u != u_train.user_id]
    )
    np.testing.assert_allclose(got[0], loo.features([first], [ad_ids[nxt]])[0], atol=1e-6)
    np.testing.assert_allclose(
        got[1], co.features([h.item_id for h in u_test.recent(20)], [ad_ids[nxt]])[0], atol=1e-6
    )
