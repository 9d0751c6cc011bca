"""Generator units: soft user tokens, collators, losses, prompts, vector files, configs, the from-scratch base."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from creator.io.records import write_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")



# ---------------------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------------------


def test_sft_collator_tensors_spelled_out():
    from training.collators import UserPreferenceCollator, UserSFTCollator

    examples = [
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "user_emb": [1.0, 2.0]},
        {"input_ids": [5, 8], "labels": [-100, 8], "user_emb": [3.0, 4.0]},
    ]
    batch = UserSFTCollator(pad_token_id=0)(examples)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, 8, -100]]
    assert batch["user_emb"].tolist() == [[1.0, 2.0], [3.0, 4.0]] and batch["user_emb"].dtype == torch.float32

    pref = UserPreferenceCollator(pad_token_id=0)(
        [
            {"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5], "user_emb": [0.5]},
            {"prompt_ids": [6], "chosen_ids": [7, 8], "rejected_ids": [9], "user_emb": [-1.0]},
        ]
    )
    # rows = [chosen0, chosen1, rejected0, rejected1]; each user's vector serves both of its titles
    assert pref["input_ids"].tolist() == [[1, 2, 3, 0], [6, 7, 8, 0], [1, 2, 4, 5], [6, 9, 0, 0]]
    assert pref["completion_mask"].tolist() == [[0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1], [0, 1, 0, 0]]
    assert pref["user_emb"].tolist() == [[0.5], [-1.0], [0.5], [-1.0]]


def test_dpo_loss_matches_hand_computation():
    """beta = 0.5.
    row 0: r_c = 0.5 * (-1 - -2) = 0.5, r_r = 0.5 * (-3 - -2) = -0.5, margin 1.0 -> log(1 + e^-1) = 0.3132617
    row 1: r_c = 0.5 * (-2 - -2) = 0.0, r_r = 0.5 * (-1 - -2) = 0.5, margin -0.5 -> log(1 + e^0.5) = 0.9740770
    mean = 0.6436694.
    """
    from training.losses import dpo_loss

    loss, rc, rr = dpo_loss(
        torch.tensor([-1.0, -2.0]),
        torch.tensor([-3.0, -1.0]),
        torch.tensor([-2.0, -2.0]),
        torch.tensor([-2.0, -2.0]),
        beta=0.5,
    )
    assert loss.item() == pytest.approx(0.6436694, abs=1e-6)
    assert rc.tolist() == [0.5, 0.0] and rr.tolist() == [-0.5, 0.5]
    assert math.log1p(math.exp(-1)) == pytest.approx(0.3132617, abs=1e-6)


def test_sequence_logps_and_info_nce_hand_values():
    """sequence_logps: V=2, logits (0, 0) at every step -> each label costs log(1/2); with labels
    [-100, 1, 0] the two scored tokens give 2 * log(0.5) = -1.3862944.
    symmetric_info_nce with a = b = I (2x2) and scale 1: logits = I, each row's CE = log(1 + e^-1)
    = 0.3132617, both directions equal -> 0.3132617."""
    from training.losses import sequence_logps, symmetric_info_nce

    lp = sequence_logps(torch.zeros(1, 3, 2), torch.tensor([[-100, 1, 0]]))
    assert lp.item() == pytest.approx(2 * math.log(0.5), abs=1e-6)
    eye = torch.eye(2)
    assert symmetric_info_nce(eye, eye, torch.tensor(0.0)).item() == pytest.approx(0.3132617, abs=1e-6)
    # the same group twice: the off-diagonal is no negative, so CE is 0
    assert symmetric_info_nce(eye, eye, torch.tensor(0.0), torch.tensor([3, 3])).item() == pytest.approx(0.0)


def test_different_user_vectors_give_different_next_token_logits(tiny_generator, generator_ads, generator_user_vectors):
    gen = tiny_generator
    ids = torch.tensor([gen.prompt_ids(generator_ads[0])])
    u = torch.tensor(np.stack([generator_user_vectors["u0"], generator_user_vectors["u1"]]))
    with torch.no_grad():
        la = gen.model(input_ids=ids, user_emb=u[:1]).logits[0, -1]
        lb = gen.model(input_ids=ids, user_emb=u[1:]).logits[0, -1]
        la2 = gen.model(input_ids=ids, user_emb=u[:1]).logits[0, -1]
    assert (la - lb).abs().max() > 1e-3
    assert torch.equal(la, la2)
    # build_prompt_embeds (the vLLM path) is exactly the training path
    emb = gen.prompt_embeds(generator_ads[0], u[0].numpy())
    with torch.no_grad():
        lc = gen.model(inputs_embeds=emb[None]).logits[0, -1]
    assert torch.allclose(la, lc, atol=1e-5)


def test_placeholders_are_enforced(generator_ads, generator_d_user, tiny_generator):
    gen = tiny_generator
    ids = torch.tensor([gen.prompt_ids(generator_ads[0])])
    with pytest.raises(ValueError, match="no user_emb"):
        gen.model(input_ids=ids)
    dup = torch.cat([ids, ids[:, :]], dim=1)
    with pytest.raises(ValueError, match="exactly once"):
        gen.model(input_ids=dup, user_emb=torch.zeros(1, generator_d_user))
    with pytest.raises(ValueError, match="shape"):
        gen.model(input_ids=ids, user_emb=torch.zeros(1, generator_d_user + 1))


def test_prompt_too_long_is_a_data_error(generator_ads, generator_d_user, tiny_generator):
    from creator.records.errors import DataError
    from training.collators import sft_example

    gen = tiny_generator
    with pytest.raises(DataError, match="max_length"):
        sft_example(gen, generator_ads[0], "A title", np.zeros(generator_d_user), max_length=10)


def test_user_vector_files(tmp_path):
    from creator.modeling.user_vectors import load_user_vectors, read_vector_file
    from creator.records.errors import DataError
    from creator.records.types import User

    vecs = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_records(
        [{"user_id": f"u{i}", "vector": vecs[i].tolist()} for i in range(3)], tmp_path / "v.parquet"
    )
    np.save(tmp_path / "v.npy", vecs)
    (tmp_path / "v.ids.txt").write_text("u0\nu1\nu2\n")
    for name in ("v.parquet", "v.npy"):
        table = read_vector_file(tmp_path / name)
        assert table["u2"].tolist() == [4.0, 5.0]
    with pytest.raises(DataError, match="no vector"):
        load_user_vectors(tmp_path / "v.parquet", [User("u0"), User("u9")])


def test_lora_on_embeddings_is_refused():  # every shipped YAML is parsed in tests/test_configs.py
    from training.sft import SFTRunConfig

    with pytest.raises(ValueError, match="vLLM"):
        SFTRunConfig(lora_targets=["q_proj", "embed_tokens"])


# ---------------------------------------------------------------------------------------------------------
# training (one small SFT run shared by the tests below; each test asserts one behaviour of it)
# ---------------------------------------------------------------------------------------------------------


def test_pretrain_lm_from_scratch_on_catalog_texts(tmp_path, generator_ad_rows):
    from creator.modeling.builders import load_base, placeholder_ids
    from training import pretrain_lm
    from training.pretrain_lm import PretrainConfig

    ads = [
        {"ad_id": f"a{i}", "title": f"{t} {i}", "description": f"{d} Item number {i}."}
        for i in range(30)
        for (_, t, d) in generator_ad_rows[i % 4 : i % 4 + 1]
    ]
    write_records(ads, tmp_path / "ads.jsonl")
    m = pretrain_lm.run(
        PretrainConfig(
            catalog=str(tmp_path / "ads.jsonl"),
            catalog_format="jsonl",
            out=str(tmp_path / "lm"),
            preset="test",
            vocab_size=320,
            block_size=32,
            max_steps=12,
            batch_size=8,
            learning_rate=3e-3,
            logging_steps=1,
            eval_fraction=0.1,
            warmup_ratio=0.0,
        )
    )
    losses = (
        [h["loss"] for h in json.loads((tmp_path / "lm" / "metrics.json").read_text())["log_history"]]
        if "log_history" in m
        else None
    )
    assert m["steps"] == 12 and m["last_logged_loss"] < m["first_logged_loss"] - 0.5, losses
    model, tok = load_base(str(tmp_path / "lm"))
    assert (
        len(placeholder_ids(tok, 4)) == 4
        and model.config.hidden_size // model.config.num_attention_heads == 64
    )


def test_user_vectors_from_a_user_model_folder_follow_the_contract(tmp_path, monkeypatch):
    """A fake ``creator.modeling.user_model`` isolates the provider: it must call
    ``UserModel.from_pretrained(DIR/user_model)`` and ``embed_users(users)`` and key the rows by user id."""
    import sys
    import types

    from creator.modeling.user_vectors import load_user_vectors
    from creator.records.types import HistoryItem, User

    calls = {}

    class FakeUserModel:
        @classmethod
        def from_pretrained(cls, path):
            calls["path"] = str(path)
            return cls()

        def embed_users(self, users, *, batch_size=256, progress=False):
            calls["users"] = [u.user_id for u in users]
            return np.array([[len(u.history), 1.0] for u in users], dtype=np.float32)

    monkeypatch.setitem(
        sys.modules, "creator.modeling.user_model", types.SimpleNamespace(UserModel=FakeUserModel)
    )
    (tmp_path / "user_model").mkdir()
    users = [User("a", [HistoryItem("1", "x")]), User("b")]
    vecs = load_user_vectors(tmp_path, users)
    assert calls == {"path": str(tmp_path / "user_model"), "users": ["a", "b"]}
    assert vecs["a"].tolist() == [1.0, 1.0] and vecs["b"].tolist() == [0.0, 1.0]
