"""Item-id embeddings and the refit of the judge: hand-checked features, cold ads, no held-out leak."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from creator.records.types import Ad, HistoryItem, User
from creator.reward.model import RewardConfig, RewardModel, RewardNet
from creator.reward.net import id_features
from training.reward.train import train


def test_id_features_match_the_hand_computed_dots():
    """P = 4: candidate (2, 0, 0, 0); history (1, 0, 0, 0), (0, 1, 0, 0) -> dots 2/2 = 1 and 0: max 1, mean 0.5.

    A second row shares that history but only its first item is real (mask): max 1, mean 1.
    An empty history gives 0, 0.
    """
    q = torch.tensor([[2.0, 0, 0, 0], [2.0, 0, 0, 0], [2.0, 0, 0, 0]])
    h = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]] * 3)
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    got = id_features(q, h, mask, torch.arange(3))
    torch.testing.assert_close(got, torch.tensor([[1.0, 0.5], [1.0, 1.0], [0.0, 0.0]]))


def test_id_dropout_only_in_training(tiny_reward_net):
    net = RewardNet(RewardConfig(item_dim=8, **tiny_reward_net, item_ids=True, id_vocab=5, id_dropout=0.5))
    ids = torch.randint(1, 6, (20000,))
    torch.manual_seed(0)
    dropped = net.train().drop_ids(ids)
    assert set(dropped[dropped != ids].tolist()) == {0}  # replaced by "unknown", never by another id
    assert abs(float((dropped == 0).float().mean()) - 0.5) < 0.02
    assert torch.equal(net.eval().drop_ids(ids), ids)


class OneHotEncoder:
    """Each text a fixed random unit vector (seeded by its characters): no model download."""

    name, dim = "fake", 16

    def encode(self, texts, **_):
        out = []
        for t in texts:
            v = np.random.default_rng(sum(map(ord, t))).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def test_ids_reach_the_score_and_unknown_ids_still_score(tiny_reward_net):
    torch.manual_seed(0)
    cfg = RewardConfig(item_dim=16, **tiny_reward_net, item_ids=True, id_vocab=2, cooccurrence=False)
    rm = RewardModel(cfg, encoder=OneHotEncoder(), item_ids=["a1", "a2"])
    with torch.no_grad():
        rm.net.ids.weight[1].fill_(1.0)
        rm.net.ids.weight[2].fill_(-1.0)
    user = User("u", [HistoryItem("a1", "Gel Pens, 12 Colors")])
    title = "Fountain Pen, Fine Nib"
    a1, a2, cold = Ad("a1", title), Ad("a2", title), Ad("zz", title)
    s = rm.logits([user] * 4, [title] * 4, [a1, a2, cold, cold])
    assert s[0] != pytest.approx(s[1], abs=1e-4)  # same text, other id: the id reaches the score
    assert s[2] == pytest.approx(rm.logits([user], [title])[0], abs=1e-6)  # unknown id == no ad given
    # the text path stays: two titles of one known ad score differently
    two = rm.logits([user] * 2, [title, "Spiral Notebook, 100 Sheets"], [a1, a1])
    assert two[0] != pytest.approx(two[1], abs=1e-4)
    with pytest.raises(ValueError, match="item ids"):
        RewardModel(cfg, encoder=OneHotEncoder(), item_ids=["a1"])


def test_refit_with_item_ids_counts_training_and_validation_users_only(tmp_path, minilm, reward_shop, reward_config,
                                                                       tiny_reward_net):
    """Refit on train + validation users for the epochs validation chose; test users never counted."""
    from creator.io import load_catalog
    from training.reward.data import ClickRows, collab_rows, split_users
    from training.reward.evaluate import RowTensors

    data = reward_shop(80)
    out = tmp_path / "out"
    cfg = reward_config(
        data, out, epochs=3, patience=3, eval_samplings=["uniform"], refit=True,
        model={**tiny_reward_net, "item_ids": True, "id_dropout": 0.3},
    )
    metrics = train(cfg, encoder=minilm)
    cat = load_catalog(data, "jsonl")
    split = split_users(sorted(cat.users), 0.15, 0.2, 0)
    fitted = [u for u in sorted(cat.users) if split[u] != "test"]
    assert metrics["refit"] == {"epochs": metrics["validation"]["best_epoch"], "users": len(fitted)}
    refit_log = (out / "train_log_refit.jsonl").read_text().splitlines()
    assert len(refit_log) == metrics["validation"]["best_epoch"] and "val_auc" not in refit_log[0]
    for key in ("auc", "auc_unknown_ids", "auc_cold_ads"):
        assert 0.0 <= metrics["validation"][key] <= 1.0
    assert not (out / "checkpoint.pt").exists() and not (out / "checkpoint_refit.pt").exists()

    rm = RewardModel.from_pretrained(out / "reward_model", encoder=minilm)
    taken = sorted({h.item_id for u in fitted for h in cat.users[u].history})
    assert rm.item_ids == taken and rm.config.id_vocab == len(taken)
    assert rm.cooccurrence.n_users == len(fitted)
    # the training path (RowTensors) and score() read the same id rows
    ads = [cat.ads[a] for a in sorted(cat.ads)]
    users = [cat.users[u] for u in fitted[:3]] + [User("new", [HistoryItem("x", "Unseen Item")])]
    rows = ClickRows(prefixes=users, prefix=[0, 1, 2, 3], cand=[0, 5, 9, 2], label=[1.0, 0, 0, 0], group=[0, 1, 2, 3])
    texts = sorted({a.title for a in ads} | {h.title for u in users for h in u.history})
    index = {t: i for i, t in enumerate(texts)}
    collab = collab_rows(rm.cooccurrence, rows, [a.ad_id for a in ads], {}, rm.config.max_history)
    rt = RowTensors(
        rows, torch.from_numpy(minilm.encode(texts)), index, ads, rm.config,
        np.array([index[a.title] for a in ads]), None, None, collab, {a: i + 1 for i, a in enumerate(rm.item_ids)},
    )
    slow = rm.logits(users, [ads[c].title for c in rows.cand], [ads[c] for c in rows.cand])
    np.testing.assert_allclose(rt.logits(rm.net), slow, atol=1e-5)

    (out / "reward_model" / "item_ids.json").unlink()
    with pytest.raises(FileNotFoundError, match="item_ids.json is missing"):
        RewardModel.from_pretrained(out / "reward_model", encoder=minilm)


def test_a_model_of_network_version_2_is_a_clear_error(tmp_path, minilm, tiny_reward_net):
    cfg = RewardConfig(item_dim=minilm.dim, **tiny_reward_net)
    RewardModel(cfg, encoder=minilm).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["version"] = 2
    for key in ("item_ids", "id_vocab", "id_dropout"):
        del saved[key]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="network version 2.*retrain it with `hllm-creator train-reward`"):
        RewardModel.from_pretrained(tmp_path, encoder=minilm)


def crash(self, path):
    raise KeyboardInterrupt


def test_refit_resumes_after_an_interruption_to_the_same_weights(tmp_path, minilm, monkeypatch, reward_shop,
                                                                 reward_config):
    """Interrupted after both phases ran (before saving): resuming trains no epoch again, same weights."""
    from safetensors.torch import load_file

    data = reward_shop(60)
    runs = {}
    for name in ("straight", "resumed"):
        cfg = reward_config(data, tmp_path / name, epochs=2, patience=2, eval_samplings=["uniform"], refit=True)
        if name == "resumed":
            real_save = RewardModel.save_pretrained
            monkeypatch.setattr(RewardModel, "save_pretrained", crash)
            with pytest.raises(KeyboardInterrupt):
                train(cfg, encoder=minilm)
            assert (tmp_path / name / "checkpoint.pt").exists() and (tmp_path / name / "checkpoint_refit.pt").exists()
            monkeypatch.setattr(RewardModel, "save_pretrained", real_save)
            train(cfg, resume=True, encoder=minilm)
        else:
            train(cfg, encoder=minilm)
        runs[name] = load_file(str(tmp_path / name / "reward_model" / "model.safetensors"))
        logs = [(tmp_path / name / f).read_text().splitlines() for f in ("train_log.jsonl", "train_log_refit.jsonl")]
        assert [json.loads(x)["epoch"] for x in logs[0]] == [1, 2]
        assert len(logs[1]) == json.loads((tmp_path / name / "metrics.json").read_text())["refit"]["epochs"]
    assert all(torch.equal(runs["straight"][k], runs["resumed"][k]) for k in runs["straight"])
