"""The reward model with an external user model: its vectors, its split, its folder, the match-head baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from creator.records.types import Ad, HistoryItem, User
from creator.reward.model import RewardConfig, RewardModel


def test_external_user_vectors_are_required_and_checked(minilm, fountain_user, shipper, tiny_reward_net):
    class FakeUserModel:  # isolates the unit: the real one is creator.modeling.user_model.UserModel
        dim = 8

        def embed_users(self, users, *, batch_size=256, progress=False):
            return np.stack([np.full(8, len(u.history), dtype=np.float32) for u in users])

    cfg = RewardConfig(item_dim=minilm.dim, user_dim=8, **tiny_reward_net)
    bare = RewardModel(cfg, encoder=minilm)
    with pytest.raises(ValueError, match="user vectors"):
        bare.score([fountain_user], ["Pen"])
    with_um = RewardModel(cfg, bare.net, encoder=minilm, user_model=FakeUserModel())
    p = with_um.score([fountain_user, shipper], ["Pen", "Pen"])
    direct = bare.score(
        [fountain_user, shipper], ["Pen", "Pen"], user_vecs=np.full((2, 8), 3, np.float32)
    )
    np.testing.assert_allclose(p, direct, atol=1e-6)  # both users have 3 history items
    wrong = type("W", (), {"dim": 5})()
    with pytest.raises(ValueError, match="user_dim=8"):
        RewardModel(cfg, encoder=minilm, user_model=wrong)


def test_train_with_a_user_model_dir_uses_its_vectors(tmp_path, minilm, monkeypatch, reward_shop, reward_config,
                                                       fountain_user):
    import training.reward.train as trm

    seen: list[tuple[str, int]] = []

    class FakeUserModel:
        dim = 4

        def embed_users(self, users, *, batch_size=256, progress=False):
            seen.extend((u.user_id, len(u.history)) for u in users)
            return np.stack([np.array([len(u.history), 1, 0, 0], dtype=np.float32) for u in users])

    monkeypatch.setattr(trm, "load_user_model", lambda path: FakeUserModel())
    # the fake has no match head, so the match-head baseline (tested with the real UserModel) is off here
    import training.reward.evaluate as tre

    monkeypatch.setattr(tre, "match_head_scores", lambda *a, **k: None)
    data = reward_shop(60)
    cfg = reward_config(
        data, tmp_path / "out", epochs=2, user_model_dir=str(tmp_path / "um"), eval_samplings=["uniform"]
    )
    trm.train(cfg, encoder=minilm)
    assert seen and len(seen) == len(set(seen))  # each history prefix embedded once, not once per epoch
    saved = json.loads((tmp_path / "out" / "reward_model" / "config.json").read_text())
    assert saved["user_dim"] == 4 and saved["user_model_dir"] == "../../um"  # relative to the saved folder
    rm = RewardModel.from_pretrained(
        tmp_path / "out" / "reward_model", encoder=minilm, user_model=FakeUserModel()
    )
    assert rm.net.user_in[0].in_features == 4
    assert np.isfinite(rm.score([fountain_user], ["Pen"])).all()

    # user_vectors: false keeps the user model's split but not its vector: nothing is embedded, nothing saved
    seen.clear()
    off = reward_config(
        data,
        tmp_path / "off",
        epochs=2,
        user_model_dir=str(tmp_path / "um"),
        user_vectors=False,
        eval_samplings=["uniform"],
    )
    metrics = trm.train(off, encoder=minilm)
    saved = json.loads((tmp_path / "off" / "reward_model" / "config.json").read_text())
    assert not seen and not saved["user_dim"] and saved["user_model_dir"] is None
    assert metrics["users"] == json.loads((tmp_path / "out" / "metrics.json").read_text())["users"]
    assert RewardModel.from_pretrained(tmp_path / "off" / "reward_model", encoder=minilm).user_model is None


def test_a_moved_run_folder_still_finds_its_user_model(tmp_path, monkeypatch, tiny_reward_net):
    import shutil

    import creator.reward.model as cr

    loaded: list[Path] = []

    class FakeUserModel:  # isolates the unit: where the saved reward model looks for its user model
        dim = 4

    def fake_load(path):
        loaded.append(Path(path))
        return FakeUserModel()

    monkeypatch.setattr(cr, "load_user_model", fake_load)
    run = tmp_path / "run"
    (run / "encoders").mkdir(parents=True)
    cfg = RewardConfig(item_dim=12, user_dim=4, user_model_dir=str(run / "encoders"), **tiny_reward_net)
    RewardModel(cfg).save_pretrained(run / "reward")
    shutil.move(run, tmp_path / "moved")  # the whole run folder goes elsewhere (another machine, say)
    rm = RewardModel.from_pretrained(tmp_path / "moved" / "reward")
    assert loaded == [(tmp_path / "moved" / "encoders").resolve()] and isinstance(rm.user_model, FakeUserModel)
    shutil.rmtree(tmp_path / "moved" / "encoders")
    with pytest.raises(FileNotFoundError, match="copy the train-encoders output"):
        RewardModel.from_pretrained(tmp_path / "moved" / "reward")
    # a user model passed in needs no folder
    assert RewardModel.from_pretrained(tmp_path / "moved" / "reward", user_model=FakeUserModel()).user_model


def test_missing_user_model_dir_is_a_clear_error(tmp_path):
    from creator.reward.model import load_user_model

    with pytest.raises(FileNotFoundError, match="train-encoders --out DIR"):
        load_user_model(tmp_path / "nowhere")


def test_match_head_baseline_lines_up_rows(monkeypatch):
    """With a stand-in creator.segments.matching, each row gets the score of its own (user, ad) cell."""
    import types

    from training.reward.data import ClickRows
    from training.reward.evaluate import match_head_scores

    fake = types.ModuleType("creator.segments.matching")
    fake.match_scores = lambda model, user_vecs, ad_vecs: user_vecs @ ad_vecs.T  # (N, M)
    monkeypatch.setitem(sys.modules, "creator.segments.matching", fake)

    class UM:
        dim = 1

        def embed_users(self, users):
            return np.array([[float(len(u.history))] for u in users])

        def embed_items(self, texts):
            return np.array([[float(len(t))] for t in texts])

    ads = [Ad("a", "ab"), Ad("b", "abcde")]
    users = [User("u1", [HistoryItem("1", "x")]), User("u2", [HistoryItem("1", "x"), HistoryItem("2", "y")])]
    rows = ClickRows(
        prefixes=users, prefix=[0, 0, 1, 1], cand=[0, 1, 1, 0], label=[1, 0, 1, 0], group=[0, 0, 1, 1]
    )
    # user length x title length: u1-a 1*2, u1-b 1*5, u2-b 2*5, u2-a 2*2
    np.testing.assert_allclose(match_head_scores(UM(), rows, ads), [2, 5, 10, 4])
