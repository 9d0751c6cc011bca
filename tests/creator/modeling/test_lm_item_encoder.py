"""HLLM-style item encoder on a tiny causal LM built here with a locally trained tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from creator.modeling.item_encoder import LMItemEncoder, build_item_encoder

CORPUS = [
    "BIC Round Stic Pen, Black, 10-Count",
    "HP 74 Black Ink Cartridge",
    "Sticky Notes, 3 x 3 in, Yellow",
    "Stapler with 1000 staples",
    "Gel pens, 12 colors",
    "Copy paper, 500 sheets, letter size",
] * 20


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    from creator.modeling.builders import train_tokenizer

    path = tmp_path_factory.mktemp("tiny-lm")
    tok = train_tokenizer(CORPUS, vocab_size=320, min_frequency=1)
    torch.manual_seed(0)
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            pad_token_id=tok.pad_token_id,
        )
    )
    lm.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_encode_shapes_norm_and_padding_invariance(tiny_lm, pooling):
    enc = LMItemEncoder(tiny_lm, pooling=pooling)
    texts = ["Gel pens", "Copy paper, 500 sheets, letter size, bright white"]
    vecs = enc.encode(texts)
    assert vecs.shape == (2, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    alone = enc.encode(["Gel pens"])  # no padding when encoded alone
    np.testing.assert_allclose(vecs[0], alone[0], atol=1e-4)
    assert not np.allclose(vecs[0], vecs[1])


def test_item_token_and_lm_get_gradients_and_change(tiny_lm):
    enc = LMItemEncoder(tiny_lm)
    before_token = enc.module.item_token.detach().clone()
    before_w = enc.module.lm.get_input_embeddings().weight.detach().clone()
    opt = torch.optim.SGD(enc.module.parameters(), lr=0.5)
    a, b = enc.forward(["Gel pens", "Stapler with 1000 staples"])
    loss = -(a @ b)  # pull the two items together
    loss.backward()
    opt.step()
    assert not torch.equal(enc.module.item_token.detach(), before_token)
    assert not torch.equal(enc.module.lm.get_input_embeddings().weight.detach(), before_w)


def test_save_and_reload_keeps_the_item_token(tiny_lm, tmp_path):
    enc = LMItemEncoder(tiny_lm)
    with torch.no_grad():
        enc.module.item_token.add_(1.0)
    enc.save_pretrained(tmp_path / "enc")
    again = build_item_encoder(f"lm:{tmp_path / 'enc'}")
    assert isinstance(again, LMItemEncoder) and again.pooling == "token"
    np.testing.assert_allclose(again.encode(["Gel pens"]), enc.encode(["Gel pens"]), atol=1e-6)
    assert build_item_encoder(f"lm-mean:{tiny_lm}").pooling == "mean"


def test_bad_pooling_is_explained(tiny_lm):
    with pytest.raises(ValueError, match="pooling"):
        LMItemEncoder(tiny_lm, pooling="cls")
