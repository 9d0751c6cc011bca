"""The reward model's network: DIN attention of a candidate title over a user's history, in PyTorch.

Inputs are text vectors from a frozen item encoder (MiniLM) plus hashed word/bigram tokens that the
network embeds itself, so a title's own wording reaches the score. ``creator.reward.model.RewardModel``
wraps it with the encoder, batching and the anti-gaming penalties.

    >>> cfg = RewardConfig(item_dim=8, proj_dim=4, attn_hidden=4, mlp_hidden=[4], token_buckets=0, cooccurrence=False)
    >>> net = RewardNet(cfg)
    >>> mask = torch.ones(3, 5, dtype=torch.bool)
    >>> net(torch.randn(3, 8), torch.randn(3, 5, 8), mask, torch.ones(3, 2)).shape
    torch.Size([3])
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from creator.reward.cooccurrence import N_COLLAB_FEATURES
from creator.reward.gaming import GamingConfig

N_TEXT_FEATURES = 6  # cos max, cos mean, cos last, history length, title chars, title words
N_ID_FEATURES = 2  # max and mean over the history of the candidate's id embedding . each history item's
# 2: co-occurrence features (``creator.reward.cooccurrence``); 3: learned item-id embeddings (``item_ids``).
# 4: bigrams over punctuation and the title's ends (``title_grams``). Models saved by an older
# version must be retrained.
REWARD_NET_VERSION = 4


@dataclass
class RewardConfig:
    """The reward model's architecture; saved as ``config.json`` beside the weights."""

    item_encoder: str = "minilm"
    item_dim: int = 384
    max_history: int = 20  # most recent history items attended over
    proj_dim: int = 64  # item vectors are projected to this size before attention
    recency: bool = True  # learned embedding of each history item's recency (0 = most recent)
    token_buckets: int = 32768  # trainable hashed word/bigram embeddings added to each item; 0 = off
    max_tokens: int = 48  # per title (``title_grams``: ends, unigrams, bigrams)
    attn_hidden: int = 64
    mlp_hidden: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.1
    use_selling_points: bool = False  # also embed the ad's selling points (needs ``ads`` when scoring)
    max_points: int = 4
    user_dim: int | None = None  # size of an external user vector; None = learned history pooling
    user_model_dir: str | None = None  # a trained UserModel folder that supplies those vectors
    cooccurrence: bool = True  # popularity and co-occurrence counts of training users (needs ad ids)
    # learned embedding per item id (collaborative signal), added to each item's text representation;
    # row 0 is "unknown" (cold ads, ids not given): the training users' items get rows 1..id_vocab
    item_ids: bool = False
    id_vocab: int = 0  # set by training (the items the training users took)
    id_dropout: float = 0.2  # training: each id is replaced by "unknown" with this probability
    gaming: GamingConfig = field(default_factory=GamingConfig)
    version: int = REWARD_NET_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.gaming, dict):
            self.gaming = GamingConfig(**self.gaming)
        self.mlp_hidden = list(self.mlp_hidden)
        if self.token_buckets < 0:
            raise ValueError(
                f"RewardConfig.token_buckets must be >= 0 (0 turns hashed tokens off), "
                f"got {self.token_buckets}"
            )
        for name in ("item_dim", "max_history", "proj_dim", "attn_hidden", "max_points", "max_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RewardConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not all(int(h) >= 1 for h in self.mlp_hidden):
            raise ValueError(f"RewardConfig.mlp_hidden must list positive sizes, got {self.mlp_hidden}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"RewardConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.id_vocab < 0 or not 0 <= self.id_dropout < 1:
            raise ValueError(
                f"RewardConfig.id_vocab must be >= 0 and id_dropout in [0, 1), got {self.id_vocab} and "
                f"{self.id_dropout}"
            )
        if self.user_model_dir and self.user_dim is None:
            raise ValueError(
                "RewardConfig.user_model_dir is set but user_dim is not; set user_dim to the "
                "UserModel's .dim (train-reward does this for you)"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gaming"] = self.gaming.to_dict()
        return d


_SEPARATOR = re.compile(r"\s[-~\u2013\u2014|]\s")  # " - ", " | ": joins of two phrases
_TOKEN = re.compile(r"[a-z0-9]+|[:;,/&+~]")


def title_grams(text: str) -> list[str]:
    """A title's word unigrams, then its bigrams over words, joining punctuation and the title's two ends.

    The ends and the punctuation carry what a bag of words cannot: a title cut mid-phrase ends on
    "for </s>", fragments glued by colons read "fine :" and ": point". The boundary bigrams come first
    and the bigrams that touch punctuation next, so a long title cut to ``max_tokens`` keeps them.

        >>> title_grams("Markers, Fine Point - great for")
        ['<s> markers', 'for </s>', 'markers', 'fine', 'point', 'great', 'for', 'markers ,', ', fine', \
'point -', '- great', 'fine point', 'great for']
    """
    seq = ["-" if t == "~" else t for t in _TOKEN.findall(_SEPARATOR.sub(" ~ ", text.lower()))]
    words = [t for t in seq if t[0].isalnum()]
    if not words:
        return []
    ends = [f"<s> {seq[0]}", f"{seq[-1]} </s>"]
    pairs = [f"{a} {b}" for a, b in zip(seq, seq[1:], strict=False)]
    marked = [g for g in pairs if not all(t[0].isalnum() for t in g.split())]
    plain = [g for g in pairs if all(t[0].isalnum() for t in g.split())]
    return ends + words + marked + plain


def hash_tokens(text: str, buckets: int, max_tokens: int) -> list[int]:
    """``title_grams`` hashed (crc32, stable across processes) into 1..buckets; 0 is padding."""
    return [zlib.crc32(g.encode()) % buckets + 1 for g in title_grams(text)[:max_tokens]]


def token_matrix(texts: Sequence[str], buckets: int, max_tokens: int) -> np.ndarray:
    """(N, max_tokens) int64 hashed tokens, 0-padded (all zeros when ``buckets`` is 0)."""
    out = np.zeros((len(texts), max_tokens), dtype=np.int64)
    if buckets:
        for i, t in enumerate(texts):
            ids = hash_tokens(t, buckets, max_tokens)
            out[i, : len(ids)] = ids
    return out


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis where ``mask`` is True; masked entries get exactly 0 weight."""
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class RewardNet(nn.Module):
    """title (B, D), history (G, T, D) + mask (G, T), lengths (B, 2) [, user, points, tokens, collab, ids] -> (B,).

    ``collab`` (B, N_COLLAB_FEATURES) are the ``creator.reward.cooccurrence`` features of each row's
    (history, ad) when ``cfg.cooccurrence``. ``title_ids`` (B,) / ``history_ids`` (G, T) index the
    learned item-id embeddings when ``cfg.item_ids`` (0 = unknown): each id's vector is added to the
    item's text representation before the attention, and the candidate's id vector dotted with each
    history item's gives two more features (max, mean).

    ``row_hist`` (B,) maps each row to its history row (rows of one request share one history, so
    it is projected once); without it G = B, row i uses history i. A learned "null" history item is
    always attended, so an empty history is defined and padding (mask False) never changes the output.
    """

    def __init__(self, cfg: RewardConfig) -> None:
        super().__init__()
        p = cfg.proj_dim
        self.cfg = cfg
        self.proj = nn.Sequential(nn.Linear(cfg.item_dim, p), nn.LayerNorm(p))
        self.tokens = (
            nn.EmbeddingBag(cfg.token_buckets + 1, p, mode="mean", padding_idx=0)
            if cfg.token_buckets
            else None
        )
        if self.tokens is not None:  # a gram never seen in training (or in a generated title) adds nothing
            nn.init.zeros_(self.tokens.weight)
        self.ids = None
        if cfg.item_ids:
            if cfg.id_vocab < 1:
                raise ValueError(
                    "RewardConfig.item_ids needs id_vocab >= 1 (the number of known item ids; "
                    "train-reward sets it from the training users' items)"
                )
            self.ids = nn.Embedding(cfg.id_vocab + 1, p)
            nn.init.normal_(self.ids.weight, std=0.1)
        self.null_item = nn.Parameter(torch.zeros(1, 1, p))
        self.recency = nn.Embedding(cfg.max_history, p) if cfg.recency else None
        # DIN attention MLP on [q, k, q - k, q * k]; its first layer is applied term by term (same maths,
        # the k term computed once per history instead of once per candidate)
        self.din_in = nn.Linear(4 * p, cfg.attn_hidden)
        self.din_out = nn.Sequential(nn.GELU(), nn.Linear(cfg.attn_hidden, 1))
        if cfg.user_dim:
            self.user_in = nn.Sequential(nn.Linear(cfg.user_dim, p), nn.LayerNorm(p))
        else:
            self.user_query = nn.Parameter(torch.randn(p) / p**0.5)
        n_in = (
            5 * p
            + N_TEXT_FEATURES
            + (N_ID_FEATURES if cfg.item_ids else 0)
            + (N_COLLAB_FEATURES if cfg.cooccurrence else 0)
            + (2 * p if cfg.use_selling_points else 0)
        )
        layers: list[nn.Module] = []
        for h in cfg.mlp_hidden:
            layers += [nn.Linear(n_in, h), nn.GELU(), nn.Dropout(cfg.dropout)]
            n_in = h
        self.mlp = nn.Sequential(*layers, nn.Linear(n_in, 1))

    def forward(
        self,
        title: torch.Tensor,
        history: torch.Tensor,
        mask: torch.Tensor,
        lengths: torch.Tensor,
        user: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        row_hist: torch.Tensor | None = None,
        title_tokens: torch.Tensor | None = None,
        history_tokens: torch.Tensor | None = None,
        collab: torch.Tensor | None = None,
        title_ids: torch.Tensor | None = None,
        history_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        g, p = history.shape[0], self.cfg.proj_dim
        if row_hist is None:
            row_hist = torch.arange(g, device=history.device)
        feats = text_features(title, history, mask, lengths, self.cfg.max_history, row_hist)  # (B, F)
        q = self.item(title, title_tokens)  # (B, P)
        items = self.item(history, history_tokens)  # (G, T, P)
        id_feats = None
        if self.ids is not None:
            if title_ids is None or history_ids is None:
                raise ValueError(
                    "this reward model uses item-id embeddings: pass title_ids/history_ids "
                    "(0 = unknown; RewardModel.score does)"
                )
            title_ids, history_ids = self.drop_ids(title_ids), self.drop_ids(history_ids)
            q_id, h_id = self.ids(title_ids), self.ids(history_ids)  # (B, P), (G, T, P)
            q, items = q + q_id, items + h_id
            id_feats = id_features(q_id, h_id, mask, row_hist)
        if self.recency is not None:  # left-aligned: item j of n is (n - 1 - j) steps old
            steps = torch.arange(mask.shape[1], device=mask.device)
            age = (mask.sum(1, keepdim=True) - 1 - steps).clamp(min=0)
            items = items + self.recency(age)
        keys = torch.cat([self.null_item.expand(g, 1, -1), items], dim=1)  # (G, 1+T, P)
        full_mask = torch.cat([torch.ones(g, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        w_q, w_k, w_d, w_m = self.din_in.weight.split(p, dim=1)  # (A, P) each
        k_term = keys @ (w_k - w_d).T  # (G, 1+T, A)
        rk = keys[row_hist]  # (B, 1+T, P)
        hidden = (
            k_term[row_hist]
            + (q @ (w_q + w_d).T + self.din_in.bias).unsqueeze(1)
            + (q.unsqueeze(1) * rk) @ w_m.T
        )  # (B, 1+T, A)
        att = self.din_out(hidden).squeeze(-1)  # (B, 1+T)
        rmask = full_mask[row_hist]
        interest = (masked_softmax(att, rmask).unsqueeze(-1) * rk).sum(1)  # (B, P)
        if self.cfg.user_dim:
            if user is None:
                raise ValueError(
                    "this reward model was trained with external user vectors: pass user_vecs "
                    "(or load it with its user_model_dir)"
                )
            u = self.user_in(user)
        else:
            pool = keys @ self.user_query / p**0.5  # (G, 1+T)
            u = (masked_softmax(pool, full_mask).unsqueeze(-1) * keys).sum(1)[row_hist]  # (B, P)
        parts = [q, interest, u, q * interest, q * u, feats]
        if id_feats is not None:
            parts.append(id_feats)
        if self.cfg.cooccurrence:
            if collab is None:
                raise ValueError(
                    "this reward model uses co-occurrence features: pass collab (RewardModel.score does)"
                )
            parts.append(collab)
        if self.cfg.use_selling_points:
            if points is None:
                raise ValueError("this reward model uses selling points: pass the ads to score()")
            sp = self.proj(points)
            parts += [sp, q * sp]
        return self.mlp(torch.cat(parts, dim=-1)).squeeze(-1)

    def drop_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """In training, each id becomes 0 ("unknown") with probability ``id_dropout``: cold ads still score."""
        if not self.training or not self.cfg.id_dropout:
            return ids
        return ids.masked_fill(torch.rand(ids.shape, device=ids.device) < self.cfg.id_dropout, 0)

    def item(self, vec: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        """(..., D) frozen text vectors [+ (..., L) hashed tokens] -> (..., P) item representations."""
        x = self.proj(vec)
        if self.tokens is not None:
            if tokens is None:
                raise ValueError(
                    "this reward model uses hashed title tokens: pass title_tokens/history_tokens"
                )
            x = x + self.tokens(tokens.reshape(-1, tokens.shape[-1])).reshape(*tokens.shape[:-1], -1)
        return x


def text_features(
    title: torch.Tensor,
    history: torch.Tensor,
    mask: torch.Tensor,
    lengths: torch.Tensor,
    max_history: int,
    row_hist: torch.Tensor,
) -> torch.Tensor:
    """(B, 6): max / mean / last cosine of the title to the history, history size, title chars and words.

    Item vectors are L2-normalised, so a dot product is the cosine. Empty histories give cosines of 0.
    """
    history, mask = history[row_hist], mask[row_hist]  # (B, T, D), (B, T)
    cos = (history @ title.unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)  # (B, T)
    n = mask.sum(1).clamp(min=1)
    cmax = cos.masked_fill(~mask, -1.0).max(1).values.masked_fill(~mask.any(1), 0.0)
    last_idx = (mask.sum(1) - 1).clamp(min=0)  # histories are left-aligned, most recent last
    clast = cos.gather(1, last_idx.unsqueeze(1)).squeeze(1)
    return torch.stack(
        [cmax, cos.sum(1) / n, clast, mask.sum(1) / max_history, lengths[:, 0] / 100.0, lengths[:, 1] / 20.0],
        dim=1,
    )


def id_features(
    q_id: torch.Tensor, h_id: torch.Tensor, mask: torch.Tensor, row_hist: torch.Tensor
) -> torch.Tensor:
    """(B, 2): max and mean over the history of candidate-id . history-id / sqrt(P) (0 for an empty history).

    Hand check: P = 4, candidate (2, 0, 0, 0), history items (1, 0, 0, 0) and (0, 1, 0, 0):
    dots 2 / 2 = 1 and 0 -> max 1, mean 0.5.
    """
    dots = (h_id[row_hist] @ q_id.unsqueeze(-1)).squeeze(-1) / q_id.shape[-1] ** 0.5  # (B, T)
    m = mask[row_hist]
    return torch.stack(
        [
            dots.masked_fill(~m, float("-inf")).max(1).values.masked_fill(~m.any(1), 0.0),
            dots.masked_fill(~m, 0.0).sum(1) / m.sum(1).clamp(min=1),
        ],
        dim=1,
    )


def title_lengths(titles: Sequence[str]) -> np.ndarray:
    """(N, 2) float32: characters and whitespace words of each title."""
    return np.array([[len(t), len(t.split())] for t in titles], dtype=np.float32).reshape(-1, 2)
