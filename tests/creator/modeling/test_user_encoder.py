"""User encoder: shapes, padding never changes a user vector, cold start, HF backbone."""

from __future__ import annotations

import pytest
import torch

from creator.modeling.user_encoder import UserEncoder, UserEncoderConfig, pack_right

TINY = dict(item_dim=8, hidden=16, layers=2, heads=2, dropout=0.0, max_len=6)


def _trained_like(enc: UserEncoder) -> UserEncoder:
    """Zero-initialised output layers hide bugs; give every parameter a random value first."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return enc.eval()


def test_shapes_and_unit_norm():
    enc = _trained_like(UserEncoder(UserEncoderConfig(**TINY)))
    out = enc(torch.randn(3, 4, 8), torch.ones(3, 4, dtype=torch.bool))
    assert out.shape == (3, 8)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)
    enc2 = UserEncoder(UserEncoderConfig(**{**TINY, "dim": 5}))
    assert enc2(torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)).shape == (2, 5)
    assert enc2.item_space(torch.randn(7, 8)).shape == (7, 5)


@pytest.mark.parametrize("mean_skip", [True, False])
def test_padding_never_changes_the_user_vector(mean_skip):
    enc = _trained_like(UserEncoder(UserEncoderConfig(**TINY, mean_skip=mean_skip)))
    torch.manual_seed(0)
    items = torch.randn(1, 3, 8)
    base = enc(items, torch.ones(1, 3, dtype=torch.bool))
    garbage = torch.randn(1, 4, 8) * 50  # padded slots hold junk, not zeros
    right = enc(torch.cat([items, garbage], 1), torch.tensor([[1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool))
    left = enc(torch.cat([garbage, items], 1), torch.tensor([[0, 0, 0, 0, 1, 1, 1]], dtype=torch.bool))
    mixed_x = torch.stack([garbage[0, 0], items[0, 0], garbage[0, 1], items[0, 1], items[0, 2]])[None]
    mixed = enc(mixed_x, torch.tensor([[0, 1, 0, 1, 1]], dtype=torch.bool))
    for other in (right, left, mixed):
        torch.testing.assert_close(other, base, atol=1e-5, rtol=1e-5)
    # and the same user batched next to a longer one
    batch = torch.cat([torch.cat([items, garbage], 1), torch.randn(1, 7, 8)])
    both = enc(batch, torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1] * 7], dtype=torch.bool))
    torch.testing.assert_close(both[:1], base, atol=1e-5, rtol=1e-5)


def test_order_matters_and_history_is_used():
    enc = _trained_like(UserEncoder(UserEncoderConfig(**TINY, mean_skip=False)))
    items = torch.randn(1, 4, 8)
    mask = torch.ones(1, 4, dtype=torch.bool)
    a, b = enc(items, mask), enc(items.flip(1), mask)
    assert not torch.allclose(a, b, atol=1e-4)  # positions count back from the newest item


def test_only_the_most_recent_max_len_items_are_used():
    enc = _trained_like(UserEncoder(UserEncoderConfig(**TINY)))
    items = torch.randn(1, 9, 8)
    full = enc(items, torch.ones(1, 9, dtype=torch.bool))
    recent = enc(items[:, -6:], torch.ones(1, 6, dtype=torch.bool))
    torch.testing.assert_close(full, recent, atol=1e-5, rtol=1e-5)


def test_cold_start_user_gets_a_defined_vector():
    enc = _trained_like(UserEncoder(UserEncoderConfig(**TINY)))
    out = enc(torch.randn(2, 3, 8), torch.zeros(2, 3, dtype=torch.bool))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], out[1])  # the user token alone, whatever sits in the padding
    assert out.norm() > 0


def test_pack_right_keeps_order():
    x = torch.arange(5.0).view(1, 5, 1)
    packed, mask = pack_right(x, torch.tensor([[1, 0, 1, 0, 1]], dtype=torch.bool))
    assert mask.tolist() == [[False, False, True, True, True]]
    assert packed[0, 2:, 0].tolist() == [0.0, 2.0, 4.0]


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="divisible by heads"):
        UserEncoderConfig(hidden=10, heads=4)
    with pytest.raises(ValueError, match="dropout"):
        UserEncoderConfig(dropout=1.5)


def test_hf_causal_lm_backbone_is_padding_invariant(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
        )
    )
    lm.save_pretrained(tmp_path / "lm")
    enc = _trained_like(
        UserEncoder(UserEncoderConfig(item_dim=8, backbone=str(tmp_path / "lm"), max_len=6))
    )
    items = torch.randn(1, 3, 8)
    base = enc(items, torch.ones(1, 3, dtype=torch.bool))
    padded = enc(
        torch.cat([torch.randn(1, 2, 8), items], 1), torch.tensor([[0, 0, 1, 1, 1]], dtype=torch.bool)
    )
    assert base.shape == (1, 8)
    torch.testing.assert_close(padded, base, atol=1e-4, rtol=1e-4)
    cold = enc(torch.randn(1, 2, 8), torch.zeros(1, 2, dtype=torch.bool))
    assert torch.isfinite(cold).all()
    # saved with the bundle, the backbone goes to user_model/user_backbone and reloads to the same outputs
    from creator.modeling.match_head import MatchHead
    from creator.modeling.user_model import UserModel

    UserModel(enc, MatchHead(enc.dim, 8), "unused").save_pretrained(tmp_path / "um")
    again = UserModel.from_pretrained(tmp_path / "um").encoder
    assert (tmp_path / "um" / "user_backbone").is_dir()
    torch.testing.assert_close(again(items, torch.ones(1, 3, dtype=torch.bool)), base)
