"""User encoder: the vectors of a user's recent items plus a learnable user token -> one user vector.

HLLM's user LLM reads the item vectors of a history and emits the hidden state of a learnable
[USER] token. Here that is a small pre-LN transformer trained from scratch by default; any HF
causal LM can serve as the backbone instead (fed ``inputs_embeds``) for users who have one.

Padding never changes a user vector: real items are packed to the end of the sequence, positions
count back from the most recent real item, and padded keys are masked out of attention. A user
with no history gets the user token alone, never NaN.

    >>> enc = UserEncoder(UserEncoderConfig(item_dim=8, hidden=16, layers=1, heads=2))
    >>> enc(torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UserEncoderConfig:
    """Shape of the user encoder. ``dim=None`` makes the user vector live in the item space (dim = item_dim).

    ``mean_skip`` adds the mean of the history item vectors to the transformer's output, so an
    untrained encoder starts exactly at the zero-shot mean-of-history baseline and learns a correction.
    ``backbone`` is an HF causal-LM id or folder; None builds the small transformer from scratch.
    """

    item_dim: int = 384
    dim: int | None = None
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    ffn_mult: int = 4
    dropout: float = 0.1
    max_len: int = 50
    mean_skip: bool = True
    item_tower: bool = True
    backbone: str | None = None

    def __post_init__(self) -> None:
        for name in ("item_dim", "hidden", "layers", "heads", "ffn_mult", "max_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"UserEncoderConfig.{name} must be >= 1, got {getattr(self, name)}; "
                                 f"set {name} to a positive integer")
        if self.dim is not None and self.dim < 1:
            raise ValueError(f"UserEncoderConfig.dim must be >= 1 or None, got {self.dim}; "
                             "leave it out to use the item dimension")
        if self.backbone is None and self.hidden % self.heads:
            raise ValueError(f"UserEncoderConfig.hidden ({self.hidden}) must be divisible by heads "
                             f"({self.heads}); e.g. hidden=128 with heads=4")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"UserEncoderConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def out_dim(self) -> int:
        return self.dim or self.item_dim

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    """Pre-LN transformer block with bidirectional attention over the real positions only."""

    def __init__(self, hidden: int, heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, ffn_mult * hidden), nn.GELU(),
                                 nn.Linear(ffn_mult * hidden, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(H, dim=-1)
        # (B, heads, T, H / heads)
        q, k, v = (t.view(B, T, self.heads, H // self.heads).transpose(1, 2) for t in (q, k, v))
        attn_mask = keep[:, None, None, :]  # (B, 1, 1, T): True = may attend; the user token is always True
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.drop.p if self.training else 0.0)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(B, T, H)))
        return x + self.drop(self.mlp(self.ln2(x)))


class ItemTower(nn.Module):
    """Item vector -> the space user vectors are scored in: x + MLP(x) with the MLP starting at zero."""

    def __init__(self, item_dim: int, out_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.skip = nn.Identity() if item_dim == out_dim else nn.Linear(item_dim, out_dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(item_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, out_dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., item_dim) -> (..., out_dim), L2-normalised
        return F.normalize(self.skip(x) + self.mlp(x), dim=-1)


def pack_right(item_vecs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real items to the end, order kept, so the user token comes right after the newest."""
    T = mask.shape[1]
    order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)  # padding (0) first, real (1) after
    packed = torch.gather(item_vecs, 1, order[..., None].expand(-1, -1, item_vecs.shape[-1]))
    n_real = mask.sum(1, keepdim=True)
    new_mask = torch.arange(T, device=mask.device)[None, :] >= (T - n_real)
    return packed, new_mask


class UserEncoder(nn.Module):
    """``forward(item_vecs (B, T, item_dim), mask (B, T) bool True=real) -> (B, dim)`` user vectors.

    The most recent ``max_len`` real items are used. ``item_tower`` maps catalog item vectors into the
    user space for next-item scoring (``score_items``).
    """

    def __init__(self, config: UserEncoderConfig) -> None:
        super().__init__()
        self.config = c = config
        self.backbone = None
        if c.backbone:
            from transformers import AutoModelForCausalLM

            lm = AutoModelForCausalLM.from_pretrained(c.backbone)
            self.backbone = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.base_model
            width = int(lm.config.hidden_size)
        else:
            width = c.hidden
            self.pos = nn.Embedding(c.max_len + 1, width)  # 0 = the user token, 1 = newest item, ...
            self.blocks = nn.ModuleList(Block(width, c.heads, c.ffn_mult, c.dropout) for _ in range(c.layers))
        self.width = width
        self.inp = nn.Linear(c.item_dim, width)
        self.user_token = nn.Parameter(torch.randn(width) * 0.02)
        self.ln_f = nn.LayerNorm(width)
        self.out = nn.Linear(width, c.out_dim)
        if c.mean_skip:
            same = c.item_dim == c.out_dim
            self.skip = nn.Identity() if same else nn.Linear(c.item_dim, c.out_dim, bias=False)
            nn.init.zeros_(self.out.weight)  # start at the mean-of-history vector; learn the correction
            nn.init.zeros_(self.out.bias)
        self.drop = nn.Dropout(c.dropout)
        self.tower = ItemTower(c.item_dim, c.out_dim, 2 * c.hidden, c.dropout) if c.item_tower else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def dim(self) -> int:
        return self.config.out_dim

    def forward(self, item_vecs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        c = self.config
        mask = mask.bool()
        if item_vecs.shape[1] > c.max_len:  # keep the most recent max_len real items
            item_vecs, mask = pack_right(item_vecs, mask)
            item_vecs, mask = item_vecs[:, -c.max_len:], mask[:, -c.max_len:]
        x, mask = pack_right(item_vecs, mask)  # (B, T, D), real items last
        B, T, _ = x.shape
        h = self.drop(self.inp(x))  # (B, T, W)
        h = torch.cat([h, self.user_token.expand(B, 1, -1)], dim=1)  # (B, T+1, W): the user token is last
        keep = torch.cat([mask, mask.new_ones(B, 1)], dim=1)  # (B, T+1)
        if self.backbone is None:
            # position = steps back from the user token, so it does not depend on how much padding there is
            pos = torch.flip(torch.cumsum(torch.flip(keep.long(), [1]), 1), [1]) - 1
            h = h + self.pos(pos.clamp(max=c.max_len))
            for block in self.blocks:
                h = block(h, keep)
            u = h[:, -1]
        else:
            position_ids = (torch.cumsum(keep.long(), 1) - 1).clamp(min=0)
            out = self.backbone(inputs_embeds=h.to(self.backbone.dtype), attention_mask=keep.long(),
                                position_ids=position_ids)
            u = out.last_hidden_state[:, -1].float()
        u = self.out(self.ln_f(u))  # (B, dim)
        if c.mean_skip:
            m = mask[..., None].to(x.dtype)
            mean = (x * m).sum(1) / m.sum(1).clamp(min=1.0)  # zeros for an empty history
            u = u + self.skip(mean)
        return F.normalize(u, dim=-1)

    def item_space(self, item_vecs: torch.Tensor) -> torch.Tensor:
        """Catalog item vectors (N, item_dim) -> (N, dim), L2-normalised, in the space users score in."""
        return self.tower(item_vecs) if self.tower is not None else F.normalize(item_vecs, dim=-1)

    def score_items(self, user_vecs: torch.Tensor, item_vecs: torch.Tensor) -> torch.Tensor:
        """Cosine of (B, dim) users with (N, item_dim) items -> (B, N); no temperature."""
        return user_vecs @ self.item_space(item_vecs).T
