"""Corrupted titles as the judge's negatives: each kind is deterministic in its seed and really broken, the rows
sit beside the real title's positive, and training on them teaches the judge to prefer the readable title."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch

from creator.records.rewrite import good_hook, hook
from creator.records.types import Ad, HistoryItem, User
from creator.reward.net import RewardConfig
from training.reward.corruptions import CONNECTIVES, CORRUPTIONS, corrupt, title_corruptions
from training.reward.data import ClickRows, with_corruptions
from training.reward.evaluate import RowTensors

AD = Ad("m1", "Sharpie Permanent Markers, Fine Point, Assorted Colors, 12 Count (30072)", brand="Sharpie",
        selling_points=["Quick-drying ink resists fading and water on almost any surface"])
BARE = Ad("s1", "Heavy Duty Office Desk Stapler with Staple Remover")  # no facts, no selling points


def words(text: str) -> list[str]:
    return text.replace(":", " ").split()


@pytest.mark.parametrize("ad", [AD, BARE])
def test_every_kind_is_deterministic_in_its_seed(ad):
    first = title_corruptions(ad, seed=0)
    assert first == title_corruptions(ad, seed=0)
    assert set(first) <= set(CORRUPTIONS) and all(t != ad.title for t in first.values())
    others = [title_corruptions(ad, seed=s) for s in range(1, 6)]
    assert any(o["shuffled"] != first["shuffled"] for o in others)  # the seed is really used


def test_shuffled_keeps_the_words_and_breaks_the_order():
    for seed in range(20):
        out = corrupt(AD.title, "shuffled", random.Random(seed))
        assert sorted(out.split()) == sorted(AD.title.split()) and out.split() != AD.title.split()
    assert corrupt("Stapler", "shuffled", random.Random(0)) is None  # one word: nothing to shuffle


def test_cut_hook_ends_a_hook_mid_phrase():
    hooks = [hook(p) for p in AD.selling_points if good_hook(hook(p), AD.title)]
    assert hooks, "the fixture ad should have a benefit-like hook"
    for seed in range(20):
        out = corrupt(AD.title, "cut_hook", random.Random(seed), hooks=hooks)
        part = out.removeprefix(AD.title + " - ") if out.startswith(AD.title + " - ") else out.split(": " + AD.title)[0]
        assert part != out and AD.title in out
        cut = part.split()
        hook_words = hooks[0].split()
        # a strict prefix of the hook (two or more of its words lost), ending on a dangling connective
        assert cut[:-1] == hook_words[: len(cut) - 1] and len(cut) - 1 <= len(hook_words) - 2
        assert cut[-1].lower() in {"to", "for", "with", "and", "of", "on", "in", "the", "a", "an", "by", "from", "at",
                                   "as", "that", "which", "while", "so", "your", "you", "is", "are", "be", "&", "or"}
    bare = corrupt(BARE.title, "cut_hook", random.Random(3))  # no hook: the title itself is cut
    assert len(bare.split()) < len(BARE.title.split()) and bare.split()[0] == "Heavy"


def test_stacked_connectives_puts_two_or_more_connectives_in_a_row():
    vocab = {w for c in CONNECTIVES for w in c.split()}
    for seed in range(20):
        out = corrupt(BARE.title, "stacked_connectives", random.Random(seed)).split()
        assert len(out) >= len(BARE.title.split()) + 2
        assert any(a in vocab and b in vocab for a, b in zip(out, out[1:], strict=False))
        assert [w for w in out if w not in vocab] == [w for w in BARE.title.split() if w not in vocab]


def test_stray_colons_joins_fragments_with_two_or_more_colons():
    for seed in range(20):
        out = corrupt(BARE.title, "stray_colons", random.Random(seed))
        assert out.count(":") >= 2 and set(words(out)) <= set(BARE.title.split())


def test_dropped_facts_loses_numbers_codes_and_brand_and_needs_facts():
    out = corrupt(AD.title, "dropped_facts", random.Random(0), brand="Sharpie")
    assert out == "Permanent Markers, Fine Point, Assorted Colors"
    assert not re.search(r"\d", out) and "Sharpie" not in out
    assert corrupt(BARE.title, "dropped_facts", random.Random(0)) is None  # nothing factual to drop
    assert "dropped_facts" not in title_corruptions(BARE, seed=0)


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown corruption 'typos'"):
        corrupt(AD.title, "typos", random.Random(0))


def test_corrupted_rows_sit_beside_each_positive_with_label_zero():
    user = User("u", [HistoryItem("x", "h")])
    # two requests: (positive ad 0, negatives 1, 2) and (positive ad 1, negative 0); ad 1 has no corruptions
    rows = ClickRows(prefixes=[user, user], prefix=[0, 0, 0, 1, 1], cand=[0, 1, 2, 1, 0],
                     label=[1.0, 0.0, 0.0, 1.0, 0.0], group=[0, 0, 0, 1, 1])
    out = with_corruptions(rows, [3, 0, 2], 2, np.random.default_rng(0))
    assert out.cand == [0, 0, 0, 1, 2, 1, 0] and out.label == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert out.group == [0, 0, 0, 0, 0, 1, 1] and out.prefix == [0, 0, 0, 0, 0, 1, 1]
    assert out.variant[0] == -1 and out.variant[3:] == [-1, -1, -1, -1]
    assert len(set(out.variant[1:3])) == 2 and all(0 <= v < 3 for v in out.variant[1:3])
    merged = ClickRows(prefixes=[user], prefix=[0], cand=[2], label=[1.0], group=[0]).extend(out)
    assert merged.variant == [-1] + out.variant  # rows without variants read as the ad's own title

    texts = ["a", "b", "c", "a-bad1", "a-bad2", "a-bad3", "h", "a-rw"]
    index = {t: i for i, t in enumerate(texts)}
    ads = [Ad("A", "a"), Ad("B", "b"), Ad("C", "c")]
    corrupt_ids = [np.array([3, 4, 5]), np.array([], dtype=np.int64), np.array([1, 2])]
    rt = RowTensors(out, torch.zeros(len(texts), 4), index, ads, RewardConfig(item_dim=4), np.array([0, 1, 2]),
                    None, corruptions=corrupt_ids)
    got = rt.cand_text.tolist()
    assert got[0] == 0 and set(got[1:3]) <= {3, 4, 5} and got[3:] == [1, 2, 1, 0]
    rt.rewrite([np.array([7]), np.array([], dtype=np.int64), np.array([], dtype=np.int64)], 1.0,
               np.random.default_rng(0))
    assert rt.cand_text.tolist()[0] == 7 and rt.cand_text.tolist()[1:3] == got[1:3]  # corrupted rows stay corrupted


def test_training_on_corruptions_reports_each_kind_and_prefers_the_real_title(tmp_path, minilm, reward_shop,
                                                                              reward_config):
    from training.reward.train import train

    data = reward_shop()
    metrics = train(reward_config(data, tmp_path / "on", corruption_negatives=2), encoder=minilm)
    on = metrics["corruptions"]
    assert {"shuffled", "stacked_connectives", "stray_colons", "cut_hook", "all"} <= set(on)
    assert all(v["pairs"] > 50 for v in on.values())
    assert on["all"]["real_beats_corrupted"] > 0.9
    off = train(reward_config(data, tmp_path / "off"), encoder=minilm)["corruptions"]
    assert on["all"]["real_beats_corrupted"] > off["all"]["real_beats_corrupted"]
    assert "Corrupted titles" in (tmp_path / "on" / "README.md").read_text()


def test_pairwise_loss_ranks_the_real_title_above_its_corruption_outside_the_click_loss():
    """Rows: a positive (z 2), its corrupted copy (z 1), a negative (z 0). Pairwise: BCE over the positive and
    the negative only, plus softplus(1 - 2); label: BCE over all three rows with the copy as a 0."""
    from types import SimpleNamespace

    from training.reward.fit import _loss

    user = User("u", [HistoryItem("x", "h")])
    rows = with_corruptions(ClickRows(prefixes=[user], prefix=[0, 0], cand=[0, 1], label=[1.0, 0.0], group=[0, 0]),
                            [1, 0], 1, np.random.default_rng(0))
    rt = RowTensors(rows, torch.zeros(4, 4), {"a": 0, "b": 1, "a-bad": 2, "h": 3}, [Ad("A", "a"), Ad("B", "b")],
                    RewardConfig(item_dim=4), np.array([0, 1]), None, corruptions=[np.array([2]), np.array([])])
    assert rt.real_row.tolist() == [-1, 0, -1]
    z, idx, bce = torch.tensor([2.0, 1.0, 0.0]), torch.arange(3), torch.nn.BCEWithLogitsLoss()
    pairwise = _loss(SimpleNamespace(corruption_loss="pairwise", corruption_weight=1.0), bce, z, rt, idx)
    expected = bce(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])) + torch.nn.functional.softplus(
        torch.tensor(-1.0))
    assert float(pairwise) == pytest.approx(float(expected))
    label = _loss(SimpleNamespace(corruption_loss="label", corruption_weight=1.0), bce, z, rt, idx)
    assert float(label) == pytest.approx(float(bce(z, torch.tensor([1.0, 0.0, 0.0]))))
    # the real title in another batch: the corrupted row adds nothing
    alone = _loss(SimpleNamespace(corruption_loss="pairwise", corruption_weight=1.0), bce, z[1:], rt, idx[1:])
    assert float(alone) == pytest.approx(float(bce(torch.tensor([0.0]), torch.tensor([0.0]))))
