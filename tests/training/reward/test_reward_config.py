"""train-reward's options: every key a flag (the old --set KEY=VALUE), the net's options as one YAML mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from creator.config import parse
from training.reward.config import ResumeOption, RewardTrainConfig

REWARD_YAML = str(Path(__file__).resolve().parents[3] / "training" / "configs" / "reward.yaml")


def test_keys_are_flags_and_flags_win_over_the_yaml():
    cfg, opts = parse([RewardTrainConfig, ResumeOption],
                      ["--config", REWARD_YAML, "--refit", "false", "--corruption-negatives", "5",
                       "--corruption_weight", "0.2", "--data", "shop", "--resume"])
    assert (cfg.refit, cfg.corruption_negatives, cfg.corruption_weight, cfg.data) == (False, 5, 0.2, "shop")
    assert opts.resume is True
    assert cfg.ema_decay == 0.995 and cfg.model.gaming.copy_weight == 8.0  # the rest from the YAML


def test_model_flag_replaces_the_yaml_block():
    (cfg, _) = parse([RewardTrainConfig, ResumeOption], ["--config", REWARD_YAML, "--model", "{proj_dim: 32}"])
    assert cfg.model.proj_dim == 32 and cfg.model.mlp_hidden == [128, 64]  # other keys: RewardConfig defaults
    with pytest.raises(ValueError, match="YAML mapping"):
        parse([RewardTrainConfig], ["--model", "[1, 2]"])


def test_the_resolved_config_reads_back(tmp_path):
    from creator.config import save_resolved

    (cfg,) = parse([RewardTrainConfig], ["--config", REWARD_YAML, "--model", "{proj_dim: 32}"])
    path = save_resolved(tmp_path / "resolved.yaml", cfg)
    (back,) = parse([RewardTrainConfig], ["--config", str(path)])
    assert back.to_dict() == cfg.to_dict()
