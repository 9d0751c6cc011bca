"""Golden values for the evaluation metrics, each derived by hand in the comment above its assert.

Stand-ins isolate units: a toy title checker (factuality's counting), a bag-of-words encoder
(history similarity, segment spread). The real guard and MiniLM get one test each.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from creator.records.facts import ad_facts
from creator.records.types import Ad, GuardFailure, GuardVerdict, HistoryItem, User
from eval.metrics import (
    Compliance,
    Diversity,
    Factuality,
    HistorySimilarity,
    HistorySimilarityJudge,
    ReferenceMetrics,
    bootstrap_ci,
    distinct_n,
    history_before,
    pairwise,
    parse_channel,
    rouge,
    score_compare,
    segment_spread,
    self_bleu,
)


class BagOfWords:
    """A deterministic encoder: hashed word counts, L2-normalised. Shared words -> positive cosine."""

    name, dim = "bow", 4096

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, *, batch_size=None, progress=False):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return np.where(n > 0, out / np.maximum(n, 1e-12), 0.0).astype(np.float32)


def _ad(ad_id: str, title: str, brand: str = "", points: list[str] | None = None) -> Ad:
    ad = Ad(ad_id=ad_id, title=title, brand=brand, selling_points=points or [])
    ad.facts = ad_facts(ad)
    return ad


# ---- bootstrap -------------------------------------------------------------------------------------------


def test_bootstrap_matches_normal_approximation_for_a_coin():
    # 400 fair-coin outcomes: mean 0.5, standard error sqrt(0.25 / 400) = 0.025, so the 95% interval is
    # about 0.5 +- 1.96 * 0.025 = [0.451, 0.549]; percentile bootstrap agrees within 0.01.
    ci = bootstrap_ci([0.0, 1.0] * 200, n_resamples=4000, seed=1)
    assert ci.estimate == 0.5 and ci.n == 400
    assert ci.low == pytest.approx(0.451, abs=0.01) and ci.high == pytest.approx(0.549, abs=0.01)


def test_bootstrap_edge_cases_and_nans():
    const = bootstrap_ci([0.3] * 50)
    assert (const.estimate, const.low, const.high, const.n) == pytest.approx((0.3, 0.3, 0.3, 50))
    assert bootstrap_ci([float("nan"), 2.0]).n == 1  # NaN (no history) is left out, not counted as 0
    empty = bootstrap_ci([])
    assert empty.n == 0 and math.isnan(empty.estimate) and empty.format() == "n/a"
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0], level=1.5)


# ---- factuality -----------------------------------------------------------------------------------------


class ToyChecker:
    """Flags any '12' (ungrounded number) and a too-long title (a non-fact rule factuality must ignore)."""

    def check(self, title, ad, *, original_title=None):
        out = [GuardFailure("too_long", title[5:], "long")] if len(title) > 30 else []
        if "12" in title:
            out.append(GuardFailure("ungrounded_number", "12", "the ad says 10"))
        return GuardVerdict(out, checker="toy")


def test_factuality_counts_fact_rules_only():
    ad = _ad("1", "BIC Pens, 10-Count")
    titles = [
        "BIC Pens, 10-Count",
        "BIC Pens, 12-Count",
        "BIC Pens, 10-Count, the smoothest pen you will own",
    ]
    r = Factuality(ToyChecker())(titles, [ad] * 3)
    # 1 of 3 has a fact failure; the long one fails only 'too_long', which is compliance's business.
    assert r.rate == pytest.approx(1 / 3) and r.flags.tolist() == [0.0, 1.0, 0.0]
    assert r.by_rule == {"ungrounded_number": 1} and r.items[1].spans == ["12"] and r.checker == "toy"
    with pytest.raises(ValueError, match="one ad per title"):
        Factuality(ToyChecker())(titles, [ad])


def test_factuality_with_the_serving_guard():
    pen = _ad(
        "pen", "Pilot G2 Gel Pens, 0.7mm, Black, 12-Pack", "Pilot", ["Smooth writing, comfortable grip"]
    )
    bic = _ad("bic", "BIC Round Stic Pens, Medium Point, 10-Count", "BIC")
    f = Factuality(catalog=[pen, bic])
    titles = [
        "Pilot G2 Gel Pens for Smooth Journaling, 12-Pack",  # grounded
        "Pilot G2 Gel Pens, 24-Pack",  # 24 is not in the ad
        "BIC Gel Pens, 0.7mm, 12-Pack",
    ]  # another catalog brand
    r = f(titles, [pen] * 3)
    assert r.flags.tolist() == [0.0, 1.0, 1.0]
    assert "24" in " ".join(r.items[1].spans)
    assert "wrong_brand" in {x.rule for x in r.items[2].failures}


# ---- compliance -----------------------------------------------------------------------------------------


def test_compliance_lengths_words_banned_words():
    titles = [
        "Gel Pens, 12 Colors",  # 19 chars, 4 words
        "Gel Pens with FREE  Shipping on every order today",  # 49 chars after strip, 9 words
        "A B C D E F G H I",  # 17 chars, 9 words
        "   ",
    ]  # empty
    c = Compliance(
        channels=["headline", "short"], banned_words=["free shipping", "  "], attribute_checker=None
    )
    r = c(titles)
    head, short = r.channels["headline"], r.channels["short"]
    assert head.chars_ok.tolist() == [1, 0, 1, 0]  # <= 30 chars and not empty
    assert short.words_ok.tolist() == [1, 0, 0, 1]  # <= 8 words ("short" is 60 chars / 8 words)
    assert r.banned_word_hits == [[], ["free shipping"], [], []]  # matches across double spaces, any case
    assert r.compliant.tolist() == [1, 0, 1, 0]  # judged on the first channel (headline)
    assert r.reasons(1) == ["49 chars > 30 (headline)", "banned word 'free shipping'"]
    assert r.reasons(3) == ["empty title"]
    assert r.to_dict()["banned_attribute_rate"] is None  # check off: shown as None, never as a pass


def test_compliance_banned_attributes_through_the_checker():
    class Attr:
        def check(self, title, ad, *, original_title=None):
            hits = [GuardFailure("banned_attribute", "seniors", "age")] if "seniors" in title else []
            return GuardVerdict(hits + [GuardFailure("ungrounded_number", "9", "x")])

    ad = _ad("1", "Large Print Calendar")
    r = Compliance(channels=["title"], attribute_checker=Attr())(
        ["Calendar for seniors", "Calendar"], [ad, ad]
    )
    assert r.attribute_hits == [["seniors"], []] and r.compliant.tolist() == [0, 1]


def test_channel_specs():
    assert parse_channel("headline").max_chars == 30
    assert (
        parse_channel("push:40:6") == parse_channel("push:40:6") and parse_channel("push:40:6").max_words == 6
    )
    assert parse_channel("banner::5").max_chars is None
    with pytest.raises(ValueError, match="name:CHARS"):
        parse_channel("nonsense")


# ---- diversity ------------------------------------------------------------------------------------------


def test_distinct_n_by_hand():
    # tokens: [red, gel, pen] [red, ink, pen]: 6 unigrams, 4 unique ({red, gel, pen, ink}) -> 0.6667;
    # bigrams (red gel)(gel pen)(red ink)(ink pen): 4 of 4 unique -> 1.0. Case and punctuation ignored.
    assert distinct_n(["Red gel pen", "red ink, pen"], 1) == pytest.approx(0.6667)
    assert distinct_n(["Red gel pen", "red ink, pen"], 2) == 1.0
    assert math.isnan(distinct_n(["one"], 2))


def test_self_bleu_by_hand():
    # "a b" vs refs ["a b c d", ...]: 1- and 2-gram precision 1, effective order 2, brevity penalty
    # exp(1 - 4/2) = 0.3679; each "a b c d" has an identical twin -> 1.0. Mean (1 + 1 + 0.3679) / 3.
    assert self_bleu(["a b c d", "a b c d", "a b"]) == pytest.approx(0.7893, abs=1e-4)
    assert self_bleu(["same title", "same title"]) == 1.0
    assert self_bleu(["red pen", "blue ink"]) == 0.0
    assert math.isnan(self_bleu(["alone"]))


def test_diversity_within_ad_and_catalog():
    groups = [
        ["red gel pen", "red ink pen"],  # distinct-1 4/6, distinct-2 4/4
        ["big binder", "big binder"],  # distinct-1 2/4, distinct-2 1/2
        ["stapler"],
    ]  # one segment: not a within-ad group
    r = Diversity()(groups)
    assert r.ads_with_variants == 2
    assert r.distinct1_within_ad == pytest.approx((0.6667 + 0.5) / 2, abs=1e-4)
    assert r.distinct2_within_ad == pytest.approx((1.0 + 0.5) / 2)
    # catalog = first title per ad: "red gel pen", "big binder", "stapler": 6 tokens, all unique.
    assert r.distinct1_catalog == 1.0
    assert r.unique_titles_per_ad == 1.5  # 2 unique in the first ad, 1 in the second


# ---- reference ------------------------------------------------------------------------------------------


def test_rouge_by_hand_and_copy_baseline():
    # P 3/3, R 3/6 -> F 2 * 0.5 / 1.5 = 66.67; R-2: P 2/2, R 2/5 -> 57.14; R-L: LCS 3 -> 66.67.
    r = rouge(["the cat sat"], ["the cat sat on the mat"])
    assert r == pytest.approx({"rouge1": 66.67, "rouge2": 57.14, "rougeL": 66.67}, abs=0.01)
    out = ReferenceMetrics()(["gel pens"], ["blue gel pens"], ["blue gel pens"])
    assert out["copy_original_vs_reference"]["rouge1"] == pytest.approx(100.0)  # copying wins here
    assert out["vs_reference"]["rouge1"] == pytest.approx(80.0)  # P 2/2, R 2/3 -> 0.8
    assert "rouge-score" in out["scorer"]


# ---- personalization ------------------------------------------------------------------------------------


def test_score_compare_by_hand():
    # diffs: +0.10 good, 0 same, -0.10 bad, +0.005 same (inside the margin): Adv = (1 - 1) / 4 = 0.
    r = score_compare([0.30, 0.20, 0.50, 0.40], [0.20, 0.20, 0.60, 0.395], margin=0.01)
    assert (r.good, r.same, r.bad, r.n, r.adv) == (1, 2, 1, 4, 0.0)
    assert r.per_pair.tolist() == [1, 0, -1, 0]
    assert score_compare([0.9, 0.9], [0.1, 0.1]).adv == 1.0


def _user(uid: str, titles: list[str]) -> User:
    return User(uid, [HistoryItem(str(i), t) for i, t in enumerate(titles)])


def test_history_before_never_peeks_at_the_ad():
    u = User("u", [HistoryItem("a", "first"), HistoryItem("b", "second"), HistoryItem("c", "third")])
    assert history_before(u, "b") == ["first"]
    assert history_before(u, "zzz") == ["first", "second", "third"]


def test_history_similarity_lift_by_hand():
    enc = BagOfWords()
    # One history title "watercolor paint" -> profile = its vector. Original "gel pens" shares no word: cos 0.
    # Title "gel pens watercolor paint" has 4 words, 2 shared: cos = 2 / (sqrt(4) * sqrt(2)) = 0.7071.
    ad = _ad("ad", "gel pens")
    user = _user("u", ["watercolor paint"])
    lift = HistorySimilarity(enc)(
        [user, _user("cold", [])], [ad, ad], ["gel pens watercolor paint", "gel pens"]
    )
    assert lift[0] == pytest.approx(0.7071, abs=1e-4)
    assert math.isnan(lift[1])  # no prior history: undefined, not zero
    judge = HistorySimilarityJudge(enc)
    assert judge.score([user], ["gel pens watercolor paint"], [ad])[0] == pytest.approx(
        (1 + 0.7071) / 2, abs=1e-4
    )


def test_segment_spread_by_hand():
    enc = BagOfWords()
    # ["pens for art", "pens for art"] -> distance 0. ["red pens", "blue ink"] share nothing -> 1.
    # ["a b", "a c"]: cos 1/2 -> distance 0.5. A single segment is NaN.
    s = segment_spread(
        [["pens for art", "pens for art"], ["red pens", "blue ink"], ["a b", "a c"], ["x"]], enc
    )
    assert s[:3] == pytest.approx([0.0, 1.0, 0.5], abs=1e-6) and math.isnan(s[3])


def test_history_similarity_with_minilm(minilm):
    # The real encoder: a title that names the user's interest is closer to their history than the original.
    ad = _ad("ad", "Spiral Notebook, College Ruled, 100 Sheets")
    user = _user("u", ["Watercolor Paint Set, 24 Colors", "Acrylic Paint Brushes for Artists"])
    lift = HistorySimilarity(minilm)([user], [ad], ["Spiral Notebook for Your Painting and Sketching Notes"])
    assert lift[0] > 0.05


@pytest.mark.parametrize(
    "module",
    [
        f"eval.metrics.{m}"
        for m in ("bootstrap", "factuality", "compliance", "diversity", "reference", "personalization")
    ]
    + ["eval.systems"],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_pairwise_uses_scores_or_the_judges_own_preference():
    class ScoreJudge:
        def score(self, users, titles, ads=None):
            return np.array([len(t) / 100 for t in titles])

    class PreferJudge(ScoreJudge):  # a pairwise judge (LLM-style) decides each pair itself
        def prefer(self, users, a, b, ads=None):
            return ["bad"] * len(a)

    # By scores: "long title" (10 chars) vs "short" (5): +0.05 > margin -> Good; Adv 1.
    assert pairwise(ScoreJudge(), [None], ["long title"], ["short"]).adv == 1.0
    assert (
        pairwise(PreferJudge(), [None], ["long title"], ["short"], scores=(np.ones(1), np.zeros(1))).adv
        == -1.0
    )
