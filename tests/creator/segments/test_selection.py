"""Catalog coverage in pair selection: the ad-side top-k, the call budget and the coverage summary, on small
matrices whose expected masks are worked out by hand in each docstring."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_parts import fake_components, make_ads, make_users

from creator.backends.base import SamplingConfig
from creator.pipeline.catalog import Components, PipelineConfig, generate_for_catalog, select_pairs
from creator.segments.matching import segments_per_ad, select_with_budget

# 3 segments x 4 ads
S = np.array([[0.90, 0.80, 0.30, 0.10],
              [0.70, 0.60, 0.50, 0.20],
              [0.40, 0.85, 0.35, 0.05]])


def mask(*rows: str) -> list[list[bool]]:
    return [[c == "1" for c in r] for r in rows]


def test_segment_side_and_ad_side_rank_rules():
    """top_m 1: each segment's best ad: seg0 -> ad0 (.9), seg1 -> ad0 (.7), seg2 -> ad1 (.85).
    ad_top_k 1: each ad's best segment: ad0 -> seg0 (.9), ad1 -> seg2 (.85), ad2 -> seg1 (.5), ad3 -> seg1 (.2).
    Both: the union. With threshold .3 as well, (1, 3) = .2 goes."""
    assert select_with_budget(S, top_m=1).tolist() == mask("1000", "1000", "0100")
    assert select_with_budget(S, ad_top_k=1).tolist() == mask("1000", "0011", "0100")
    assert select_with_budget(S, top_m=1, ad_top_k=1).tolist() == mask("1000", "1011", "0100")
    assert select_with_budget(S, threshold=0.3, top_m=1, ad_top_k=1).tolist() == mask("1000", "1010", "0100")
    # no rank rule: the threshold alone; nothing at all: every pair
    assert select_with_budget(S, threshold=0.5).tolist() == mask("1100", "1110", "0100")
    assert select_with_budget(S).all()


def test_budget_gives_every_ad_its_best_pair_before_any_second_one():
    """Candidates of top_m 1 + ad_top_k 1: (0,0) .9, (2,1) .85, (1,0) .7, (1,2) .5, (1,3) .2.
    Each ad's best: ad0 (0,0) .9, ad1 (2,1) .85, ad2 (1,2) .5, ad3 (1,3) .2 -> first, by score.
    Budget 4: those four; (1,0) = .7 waits although it scores above (1,2) and (1,3).
    Budget 2: the two best firsts. Budget 5 (= candidates): nothing is dropped."""
    union = select_with_budget(S, top_m=1, ad_top_k=1)
    assert select_with_budget(S, top_m=1, ad_top_k=1, max_calls=4).tolist() == mask("1000", "0011", "0100")
    assert select_with_budget(S, top_m=1, ad_top_k=1, max_calls=2).tolist() == mask("1000", "0000", "0100")
    assert select_with_budget(S, top_m=1, ad_top_k=1, max_calls=5).tolist() == union.tolist()
    assert not select_with_budget(S, top_m=1, max_calls=0).any()


def test_budget_spends_the_rest_by_falling_score():
    """ad_top_k 2: ad0 {seg0 .9, seg1 .7}, ad1 {seg2 .85, seg0 .8}, ad2 {seg1 .5, seg2 .35}, ad3 {seg1 .2, seg0 .1}.
    Firsts: (0,0) (2,1) (1,2) (1,3); the rest by score: (0,1) .8, (1,0) .7, (2,2) .35, (0,3) .1.
    Budget 5: the four firsts and (0,1); budget 6 adds (1,0)."""
    assert select_with_budget(S, ad_top_k=2, max_calls=5).tolist() == mask("1100", "0011", "0100")
    assert select_with_budget(S, ad_top_k=2, max_calls=6).tolist() == mask("1100", "1011", "0100")


def test_empty_segments_are_never_kept_nor_ranked():
    """Segment 1 has no users. ad_top_k 1 over segments 0 and 2: ad0 -> seg0 (.9 > .4), ad1 -> seg2 (.85),
    ad2 -> seg2 (.35 > .3), ad3 -> seg0 (.1 > .05): the ads whose best was segment 1 move to their next best."""
    live = np.array([True, False, True])
    assert select_with_budget(S, ad_top_k=1, live=live).tolist() == mask("1001", "0000", "0110")
    assert not select_with_budget(S, threshold=0.0, live=live)[1].any()


def test_ties_go_to_the_lower_segment_then_the_lower_ad():
    s = np.full((2, 2), 0.5)
    assert select_with_budget(s, ad_top_k=1).tolist() == mask("11", "00")
    assert select_with_budget(s, ad_top_k=2, max_calls=3).tolist() == mask("11", "10")


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="ad_top_k must be >= 1"):
        select_with_budget(S, ad_top_k=0)
    with pytest.raises(ValueError, match="max_calls must be >= 0"):
        select_with_budget(S, max_calls=-1)
    with pytest.raises(ValueError, match="max_calls must be >= 1"):
        PipelineConfig(max_calls=0)
    with pytest.raises(ValueError, match="ad_top_k must be >= 1"):
        PipelineConfig(ad_top_k=0)


def test_select_pairs_keeps_todays_behaviour_without_the_new_rules():
    assert select_pairs(S, threshold=None, top_m=2).tolist() == mask("1100", "1100", "1100")
    assert select_pairs(S, threshold=None, top_m=1, ad_top_k=1, max_calls=4).tolist() == \
        mask("1000", "0011", "0100")


def test_segments_per_ad_counts_quantiles_and_histogram():
    """Ads personalized for 2, 0, 1 and 12 segments."""
    m = np.zeros((12, 4), dtype=bool)
    m[:2, 0] = True
    m[5, 2] = True
    m[:, 3] = True
    got = segments_per_ad(m)
    assert got["histogram"] == {"0": 1, "1": 1, "2": 1, "3-4": 0, "5-9": 0, "10+": 1}
    assert got["quantiles"]["min"] == 0 and got["quantiles"]["max"] == 12 and got["quantiles"]["median"] == 1.5
    assert got["quantiles"]["mean"] == 3.75


def parts() -> Components:
    return fake_components()


def test_pipeline_covers_every_ad_within_the_budget_and_reports_it(tmp_path):
    """3 segments x 6 ads; top-m 1 alone generates for at most 3 ads. With ad-top-k 1 and a budget of 6 every
    ad gets its best segment. FakeBackend's titles for a1 always fail the guard, so 5 of 6 ads are personalized;
    a5 is the one ad without selling points."""
    users, ads = make_users(), make_ads()
    before = generate_for_catalog(ads, users, parts(), PipelineConfig(clusters=3, top_m=1), SamplingConfig(n=3))
    assert before.summary.ads_generated_for <= 3
    res = generate_for_catalog(ads, users, parts(), PipelineConfig(clusters=3, top_m=1, ad_top_k=1, max_calls=6),
                               SamplingConfig(n=3), out_dir=tmp_path)
    s = res.summary
    assert res.keep.sum() == 6 and res.keep.any(axis=0).all()
    assert s.generator_requests == 6 and s.max_calls == 6 and s.ads_generated_for == 6
    personalized_ads = {c.ad_id for c in res.creatives if c.source == "personalized"}
    assert personalized_ads == {"a0", "a2", "a3", "a4", "a5"}
    assert s.ads_personalized == 5 and s.ads_personalized_share == round(5 / 6, 4)
    assert s.ads_with_selling_points_personalized_share == round(4 / 5, 4)  # a1 fails, a5 has no points
    assert s.segments_per_ad["histogram"]["0"] == 1 and s.segments_per_ad["histogram"]["1"] == 5
    from creator.pipeline.catalog import write_outputs

    written = json.loads(write_outputs(res, tmp_path)["summary"].read_text())
    assert written["ads_personalized"] == 5 and written["segments_per_ad"]["histogram"]["1"] == 5
