"""The judge's training loop: resume after an interruption, and the moving average of the weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from creator.reward.model import RewardModel
from training.reward.train import train


def test_interrupted_training_resumes_without_repeating_epochs(tmp_path, minilm, monkeypatch, reward_shop,
                                                                reward_config):
    data = reward_shop(60)
    cfg = reward_config(data, tmp_path / "out", epochs=2, eval_samplings=["uniform"])
    real_save = RewardModel.save_pretrained

    def crash(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(RewardModel, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, encoder=minilm)
    assert (tmp_path / "out" / "checkpoint.pt").exists()
    monkeypatch.setattr(RewardModel, "save_pretrained", real_save)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    train(cfg, resume=True, encoder=minilm)  # on cfg.threads; what runs after gets the caller's threads back
    assert cfg.threads == 1 and torch.get_num_threads() == 2
    torch.set_num_threads(before)
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert (tmp_path / "out" / "reward_model" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_weight_average_follows_the_hand_computed_decay():
    from training.reward.train import ema_update

    avg = {"w": torch.zeros(2), "n": torch.tensor(0)}
    ema_update(avg, {"w": torch.ones(2), "n": torch.tensor(7)}, decay=0.9, step=1)
    torch.testing.assert_close(avg["w"], torch.full((2,), 9 / 11))  # d = min(0.9, 2/11)
    assert int(avg["n"]) == 7
    avg["w"].zero_()
    ema_update(avg, {"w": torch.ones(2), "n": torch.tensor(7)}, decay=0.9, step=100)
    torch.testing.assert_close(avg["w"], torch.full((2,), 0.1))  # d = 0.9 once 101/110 exceeds it


def test_training_with_a_weight_average_keeps_the_averaged_weights(tmp_path, minilm, reward_shop, reward_config,
                                                                   fountain_user, notebook):
    """Same seed and batches with and without the average: the saved weights differ, and are finite."""
    data = reward_shop(60)
    saved = {}
    for decay in (0.0, 0.9):
        out = tmp_path / f"out{decay}"
        cfg = reward_config(data, out, epochs=2, patience=2, eval_samplings=["uniform"], ema_decay=decay)
        metrics = train(cfg, encoder=minilm)
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        assert metrics["best_val_auc"] == max(e["val_auc"] for e in log)
        saved[decay] = RewardModel.from_pretrained(out / "reward_model", encoder=minilm)
    plain, averaged = (dict(saved[d].net.named_parameters()) for d in (0.0, 0.9))
    assert any(not torch.equal(plain[k], averaged[k]) for k in plain)
    assert np.isfinite(saved[0.9].score([fountain_user], [notebook.title], [notebook])).all()
