"""The catalog pipeline with small fakes (see fake_parts.py): pruning, fallbacks, mapping back, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_parts import (
    FakeBackend,
    FakeGenerator,
    FakeJudge,
    FakeUserModel,
    fake_components,
    make_ads,
    make_users,
    run,
)

from creator.backends.base import SamplingConfig
from creator.pipeline.catalog import Components, PipelineConfig, generate_for_catalog, select_pairs

REPO = Path(__file__).resolve().parents[3]


def parts(**kw) -> Components:
    return fake_components(backend=kw.get("backend"), judge=kw.get("judge"))


def test_select_pairs_golden():
    """scores = [[.9, .2, .5], [.1, .6, .6]]
    threshold .5 keeps s >= .5:            [[T, F, T], [F, T, T]]
    top_m 1 keeps each row's best; the .6 tie goes to the lower ad index: [[T, F, F], [F, T, F]]
    threshold .55 AND top_m 2:             [[T, F, F], [F, T, T]]"""
    s = np.array([[0.9, 0.2, 0.5], [0.1, 0.6, 0.6]])
    T, F = True, False
    assert select_pairs(s, threshold=0.5, top_m=None).tolist() == [[T, F, T], [F, T, T]]
    assert select_pairs(s, threshold=None, top_m=1).tolist() == [[T, F, F], [F, T, F]]
    assert select_pairs(s, threshold=0.55, top_m=2).tolist() == [[T, F, F], [F, T, T]]
    assert select_pairs(s, threshold=None, top_m=None).all()


def test_pruning_removes_exactly_the_pairs_below_threshold():
    backend = FakeBackend()
    res = generate_for_catalog(make_ads(), make_users(), parts(backend=backend),
                               PipelineConfig(clusters=3, match_threshold=0.5), SamplingConfig(n=3))
    below = res.scores < 0.5
    assert below.any() and (~below).any(), "the fixture should put pairs on both sides of the threshold"
    assert np.array_equal(res.keep, ~below)
    kept_keys = {f"{k}|{res.ad_ids[m]}" for k, m in np.argwhere(~below)}
    assert sorted(backend.keys) == sorted(kept_keys)  # the generator saw exactly the kept pairs, once each
    for c in res.creatives:
        m = res.ad_ids.index(c.ad_id)
        assert (c.source == "original") == bool(below[c.segment_id, m])
    s = res.summary
    assert s.pairs_considered == 3 * 6 and s.pairs_pruned == int(below.sum())
    assert s.generator_requests == len(kept_keys) and s.candidates == 3 * len(kept_keys)


def test_top_m_keeps_the_best_ads_per_segment():
    res = generate_for_catalog(make_ads(), make_users(), parts(), PipelineConfig(clusters=3, top_m=2))
    assert res.keep.sum(axis=1).tolist() == [2, 2, 2]
    for k in range(3):
        kept = np.flatnonzero(res.keep[k])
        assert res.scores[k, kept].min() >= np.delete(res.scores[k], kept).max()


def test_fallback_exactly_where_nothing_passed_and_judge_picks_best():
    judge = FakeJudge()
    res = generate_for_catalog(make_ads(), make_users(), parts(judge=judge), PipelineConfig(clusters=3),
                               SamplingConfig(n=3))
    ads = {a.ad_id: a for a in make_ads()}
    for c in res.creatives:  # no pruning: every pair generated; a1's candidates are all bad
        if c.ad_id == "a1":
            assert c.source == "fallback" and c.title == ads["a1"].title and not c.verdict.passed
        else:
            # candidate 0 is rejected; of "..cand!" and "..cand!!" the judge (longer wins) takes the 2nd
            assert c.source == "personalized" and c.title == f"s{c.segment_id} {c.ad_id} cand!!"
            assert c.scores["judge"] == pytest.approx(len(c.title) / 100)
    # the other passing candidates of each pair are kept for uploads with several headlines
    for c in res.creatives:
        expected = [] if c.ad_id == "a1" else [f"s{c.segment_id} {c.ad_id} cand!"]
        assert res.alternates[c.segment_id, c.ad_id] == expected
    s = res.summary
    assert s.fallbacks == 3 and s.personalized == 3 * 5
    assert s.rejected_by_rule == {"banned_word": 3 * 3 + 3 * 5} == {"banned_word": s.candidates_rejected}
    # the judge scored segment titles against real users (each segment's medoid), never a cold-start stand-in
    assert set(judge.users) <= {u.user_id for u in make_users()}


def test_segments_map_back_to_every_user():
    users = make_users()
    res = generate_for_catalog(make_ads(), users, parts(), PipelineConfig(clusters=3))
    assert set(res.user_segments) == {u.user_id for u in users}
    groups = {g: {res.user_segments[u.user_id] for u in users if u.user_id.startswith(f"g{g}-")}
              for g in range(3)}
    assert all(len(s) == 1 for s in groups.values()) and len(set.union(*groups.values())) == 3
    for u in users:
        served = res.for_user(u.user_id)
        assert [c.ad_id for c in served] == [a.ad_id for a in make_ads()]
        assert {c.segment_id for c in served} == {res.user_segments[u.user_id]}
    assert len(list(res.user_rows())) == len(users) * 6
    assert res.summary.cold_start_users == 1 and res.summary.ads_without_selling_points == 1


def test_duplicate_ids_are_refused_with_the_ids_named():
    """The readers count and reject duplicate rows (test_generate_cli); a Python caller's duplicates are an error."""
    users, ads = make_users(), make_ads()
    with pytest.raises(ValueError, match=rf"1 duplicate ad_ids .*{ads[0].ad_id}"):
        generate_for_catalog(ads + [ads[0]], users, parts(), PipelineConfig(clusters=3))
    with pytest.raises(ValueError, match="2 duplicate user_ids"):
        generate_for_catalog(ads, users + users[:2], parts(), PipelineConfig(clusters=3))


def test_rerun_with_other_settings_is_refused(tmp_path):
    generate_for_catalog(make_ads(), make_users(), parts(), PipelineConfig(clusters=3), out_dir=tmp_path)
    with pytest.raises(ValueError, match="new --out"):
        generate_for_catalog(make_ads(), make_users(), parts(), PipelineConfig(clusters=2), out_dir=tmp_path)


def test_sigkill_and_resume_gives_identical_output(tmp_path):
    """A subprocess runs the pipeline (tiny random Llama, sampling) and is SIGKILLed after two shards;
    the rerun skips the finished shards and its output equals an uninterrupted run byte for byte."""
    reference = run(str(tmp_path / "ref"))
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    cmd = [sys.executable, str(REPO / "tests" / "fake_parts.py"), str(out), "0.4"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    deadline = time.time() + 300  # generous: imports are slow on a busy box
    while time.time() < deadline:
        manifest = out / "manifest.json"
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(json.loads((out / "manifest.json").read_text())["shards"])
    assert 2 <= done_at_kill < reference.summary.shards, "the kill should land mid-run"
    assert not (out / "creatives.jsonl").exists()
    resumed = run(str(out))  # the rerun (in-process: only the killed run needs its own process)
    assert resumed.summary.shards_resumed >= done_at_kill
    for name in ("creatives.jsonl", "segments.jsonl", "user_creatives.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert any(c.source == "personalized" for c in reference.creatives)


def test_everything_pruned_means_no_generator_calls_and_original_titles():
    backend = FakeBackend()
    res = generate_for_catalog(make_ads(), make_users(), parts(backend=backend),
                               PipelineConfig(clusters=3, match_threshold=1.0))
    assert backend.keys == [] and res.summary.generator_requests == 0
    assert {c.source for c in res.creatives} == {"original"}
    assert all(c.title == a.title for c, a in zip(res.creatives, make_ads() * 3, strict=True))


def test_per_user_mode_is_one_segment_and_one_request_per_user_and_ad():
    """per_user=True: 19 users x 6 ads -> 19 segments of one user, 114 requests, each for that user's own
    vector, and the judge reranks each user's titles against that very user."""
    users, ads = make_users(), make_ads()
    backend, judge, generator = FakeBackend(), FakeJudge(), FakeGenerator()
    p = fake_components(backend=backend, judge=judge, generator=generator)
    res = generate_for_catalog(ads, users, p, PipelineConfig(per_user=True), SamplingConfig(n=2))
    assert res.summary.segments == len(users) and res.summary.generator_requests == len(users) * len(ads)
    assert res.user_segments == {u.user_id: i for i, u in enumerate(users)}
    own = FakeUserModel().embed_users(users)
    assert np.allclose(np.stack(generator.user_vecs), np.repeat(own, len(ads), axis=0))  # segment-major, own vectors
    assert sorted(set(judge.users)) == sorted(u.user_id for u in users)
    with pytest.raises(ValueError, match="leave clusters unset"):
        PipelineConfig(per_user=True, clusters=4)


def test_a_resumed_run_serves_what_the_fresh_run_served(tmp_path):
    """Fresh shards stay typed up to the write; a rerun reads the same rows back (``ShardRow``) and serves
    equal creatives, verdicts included."""
    from creator.pipeline.shards import ShardRow

    config = PipelineConfig(clusters=3, match_threshold=0.45, shard_size=2)
    fresh = generate_for_catalog(make_ads(), make_users(), parts(), config, SamplingConfig(n=3), out_dir=tmp_path)
    backend = FakeBackend()
    resumed = generate_for_catalog(make_ads(), make_users(), parts(backend=backend), config, SamplingConfig(n=3),
                                   out_dir=tmp_path)
    assert backend.keys == [] and resumed.summary.shards_resumed == resumed.summary.shards > 1
    assert [c.to_dict() for c in resumed.creatives] == [c.to_dict() for c in fresh.creatives]
    assert any(c.verdict is not None and not c.verdict.passed for c in fresh.creatives)
    line = json.loads((tmp_path / "shards" / "shard-00000.jsonl").read_text().splitlines()[0])
    assert ShardRow.from_dict(line).to_dict() == line


def test_a_generator_on_its_own_user_space_gets_each_segment_described_in_that_space():
    """A generator trained on another user space (the shipped adapter reads mean MiniLM vectors) gets, for each
    segment the user model found, the normalised mean of its members' vectors in that space, or the medoid's."""
    from creator.modeling.user_vectors import segment_vectors

    users, ads = make_users(), make_ads()
    rng = np.random.default_rng(3)
    own_space = {u.user_id: rng.normal(size=5).astype(np.float32) for u in users}  # another dimension, too

    def generator_vectors(us):
        return np.stack([own_space[u.user_id] for u in us])

    for representative in ("centroid", "medoid"):
        generator = FakeGenerator()
        p = fake_components(generator=generator)
        p.generator_vectors = generator_vectors
        res = generate_for_catalog(ads, users, p, PipelineConfig(clusters=3, representative=representative),
                                   SamplingConfig(n=1))
        labels = np.array([res.user_segments[u.user_id] for u in users])
        sent = np.stack(generator.user_vecs)
        assert sent.shape == (res.summary.generator_requests, 5)
        vecs = generator_vectors(users)
        for k in set(labels.tolist()):
            members = vecs[labels == k]
            if representative == "centroid":
                want = members.mean(0) / np.linalg.norm(members.mean(0))
                assert any(np.allclose(row, want, atol=1e-6) for row in sent)
            else:  # one of the segment's own users
                assert any(np.allclose(row, m) for row in sent for m in members)
    # an empty segment gets zeros; the medoid index wins over the mean
    v = np.eye(3, dtype=np.float32)
    got = segment_vectors(v, np.array([0, 0, 2]), 3, medoids=np.array([1, -1, 2]))
    assert np.allclose(got, [[0, 1, 0], [0, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="2 vectors for 3 segment labels"):
        segment_vectors(v[:2], np.array([0, 0, 2]), 3)
