"""The split benchmark's arithmetic and its resume rule (the training it runs is tested elsewhere)."""

from __future__ import annotations

import yaml

from benchmarks.reward_splits import same_run, summary


def test_summary_is_mean_sd_and_a_t_interval():
    # mean 0.82, sd 0.02, t(0.975, 2 df) = 4.303: half-width 4.303 * 0.02 / sqrt(3) = 0.0497
    assert summary([0.80, 0.82, 0.84]) == "0.8200 ± 0.0200 (95% CI 0.7703 to 0.8697)"
    assert summary([0.81]) == "0.8100"


def test_a_finished_run_is_reused_only_for_the_same_config(tmp_path):
    cfg = {"seed": 1, "data": "d", "out": "a", "cache_dir": "c1", "model": {"proj_dim": 64}}
    run = tmp_path / "seed1"
    run.mkdir()
    (run / "resolved_config.yaml").write_text(yaml.safe_dump(cfg))
    assert not same_run(run, cfg)  # not finished: no metrics.json
    (run / "metrics.json").write_text("{}")
    assert same_run(run, {**cfg, "out": "b", "cache_dir": "c2", "threads": 2})
    assert not same_run(run, {**cfg, "seed": 2})
    assert not same_run(run, {**cfg, "model": {"proj_dim": 128}})
