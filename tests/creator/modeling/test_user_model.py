"""UserModel bundle: embed users in batches, cold start, save -> load in a fresh process -> same vectors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from creator.modeling.match_head import MatchHead, MatchHeadConfig
from creator.modeling.user_encoder import UserEncoder, UserEncoderConfig
from creator.modeling.user_model import UserModel
from creator.records.types import HistoryItem, User
from creator.segments.matching import match_scores

REPO = Path(__file__).resolve().parents[3]


class HashItemEncoder:
    """A fake item encoder (isolates the bundle from MiniLM): a fixed random unit vector per text."""

    name = "hash-test"
    dim = 8

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, *, batch_size=None, progress=False):
        self.calls += 1
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big")
            v = np.random.default_rng(seed).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


def _model(seed: int = 0) -> UserModel:
    torch.manual_seed(seed)
    enc = UserEncoder(UserEncoderConfig(item_dim=8, hidden=16, layers=1, heads=2, max_len=4))
    head = MatchHead(enc.dim, 8, MatchHeadConfig(hidden=8))
    with torch.no_grad():  # stand in for training: no zero-initialised layers left
        for p in [*enc.parameters(), *head.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
    head.calib_a.fill_(0.7)
    head.calib_b.fill_(-1.2)
    return UserModel(enc, head, "hash-test", item_encoder=HashItemEncoder())


def _users() -> list[User]:
    titles = [f"item {i}" for i in range(12)]
    return [User(f"u{k}", [HistoryItem(str(i), titles[i]) for i in range(k % 7)]) for k in range(30)]


def test_embed_users_batches_agree_and_cold_start_is_defined():
    model = _model()
    users = _users()
    full = model.embed_users(users, batch_size=256)
    small = model.embed_users(users, batch_size=4, progress=True)
    assert full.shape == (30, model.dim) and full.dtype == np.float32
    np.testing.assert_allclose(full, small, atol=1e-5)
    assert np.isfinite(full).all()
    cold = [i for i, u in enumerate(users) if not u.history]
    assert cold and np.allclose(full[cold], full[cold[0]])  # the user token alone, for every cold user
    # only the most recent max_len (4) items count
    long_user = User("x", [HistoryItem(str(i), f"item {i}") for i in range(6)])
    recent = User("y", long_user.history[-4:])
    np.testing.assert_allclose(*model.embed_users([long_user, recent]), atol=1e-6)


def test_embed_users_embeds_each_title_once_and_accepts_precomputed_vectors():
    model = _model()
    users = _users()
    model.embed_users(users)
    assert model.item_encoder.calls == 1
    enc = model.item_encoder
    vecs = {f"item {i}": enc.encode([f"item {i}"])[0] for i in range(12)}
    before = enc.calls
    np.testing.assert_allclose(
        model.embed_users(users, item_vecs=vecs), model.embed_users(users), atol=1e-6
    )
    assert enc.calls == before + 1  # only the second call without item_vecs embedded anything


def test_save_and_load_in_a_fresh_process_gives_identical_outputs(tmp_path):
    model = _model()
    users = _users()
    model.save_pretrained(tmp_path / "um")
    enc = HashItemEncoder()
    titles = sorted({h.title for u in users for h in u.history})
    np.save(tmp_path / "titles.npy", np.array(titles))
    np.save(tmp_path / "vecs.npy", enc.encode(titles))
    (tmp_path / "users.json").write_text(json.dumps([u.to_dict() for u in users]))
    ads = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    np.save(tmp_path / "ads.npy", ads)
    script = f"""
import json, numpy as np
from creator.segments.matching import match_scores
from creator.modeling.user_model import UserModel
from creator.records.types import User
d = {str(tmp_path)!r}
m = UserModel.from_pretrained(d + "/um")
users = [User.from_dict(u) for u in json.load(open(d + "/users.json"))]
vecs = dict(zip(np.load(d + "/titles.npy").tolist(), np.load(d + "/vecs.npy")))
u = m.embed_users(users, item_vecs=vecs)
np.save(d + "/out_users.npy", u)
np.save(d + "/out_scores.npy", match_scores(m, u, np.load(d + "/ads.npy")))
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)
    here = model.embed_users(users)
    np.testing.assert_array_equal(np.load(tmp_path / "out_users.npy"), here)
    np.testing.assert_array_equal(np.load(tmp_path / "out_scores.npy"), match_scores(model, here, ads))
    loaded = UserModel.from_pretrained(tmp_path / "um", item_encoder=HashItemEncoder())
    assert float(loaded.match_head.calib_a) == pytest.approx(0.7)
    assert loaded.dim == model.dim and loaded.item_dim == 8 and loaded.item_encoder_name == "hash-test"


def test_from_pretrained_explains_a_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-encoders"):
        UserModel.from_pretrained(tmp_path)


def test_item_encoder_dimension_mismatch_is_explained():
    model = _model()

    class Wide(HashItemEncoder):
        dim = 16

    model._item_encoder = Wide()
    with pytest.raises(ValueError, match="same item encoder"):
        model.embed_items(["a"])
