"""CTR reward model: p(click | user history, ad title text [, selling points]), the project's judge.

The title is embedded by the frozen item encoder (offline MiniLM by default, cached on disk), so
any new title can be scored and two titles of one ad score differently for one user. A DIN-style
attention of the candidate title over the user's history vectors gives the interest the title
speaks to; a user vector (our own learned pooling of the history, or a trained ``UserModel``'s
vector when ``user_model_dir`` / ``user_vecs`` is given) gives the user's overall taste. Both,
the title vector, their products and a few text features (cosines to the history, length) go
into an MLP trained with BCE (``hllm-creator train-reward``). ``score`` subtracts the explicit
anti-gaming penalties of ``creator.gaming`` unless ``raw=True``.

    >>> rm = RewardModel.from_pretrained("runs/reward/reward_model")         # doctest: +SKIP
    >>> titles = ["Gel Pens, 12 Colors", "Gel Pens for Bullet Journals, 12 Colors"]
    >>> rm.score([user, user], titles)                                      # doctest: +SKIP
    array([0.31, 0.47], dtype=float32)
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from creator.gaming import GamingConfig, gaming_penalties
from creator.types import Ad, User

logger = logging.getLogger(__name__)

N_TEXT_FEATURES = 6  # cos max, cos mean, cos last, history length, title chars, title words


class UserVectorSource(Protocol):
    """What the reward model needs from a trained user model (``creator.modeling.user_model.UserModel``)."""

    dim: int

    def embed_users(
        self, users: list[User], *, batch_size: int = 256, progress: bool = False
    ) -> np.ndarray: ...


@dataclass
class RewardConfig:
    """The reward model's architecture; saved as ``config.json`` beside the weights."""

    item_encoder: str = "minilm"
    item_dim: int = 384
    max_history: int = 20  # most recent history items attended over
    proj_dim: int = 64  # item vectors are projected to this size before attention
    token_buckets: int = 32768  # trainable hashed word/bigram embeddings added to each item; 0 = off
    max_tokens: int = 32  # per title (unigrams + bigrams)
    attn_hidden: int = 64
    mlp_hidden: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.1
    use_selling_points: bool = False  # also embed the ad's selling points (needs ``ads`` when scoring)
    max_points: int = 4
    user_dim: int | None = None  # size of an external user vector; None = learned history pooling
    user_model_dir: str | None = None  # a trained UserModel folder that supplies those vectors
    gaming: GamingConfig = field(default_factory=GamingConfig)

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
        if self.user_model_dir and self.user_dim is None:
            raise ValueError(
                "RewardConfig.user_model_dir is set but user_dim is not; set user_dim to the "
                "UserModel's .dim (train-reward does this for you)"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gaming"] = self.gaming.to_dict()
        return d


def hash_tokens(text: str, buckets: int, max_tokens: int) -> list[int]:
    """Word unigrams and bigrams hashed (crc32, stable across processes) into 1..buckets; 0 is padding."""
    w = re.findall(r"[a-z0-9]+", text.lower())
    grams = w + [f"{a} {b}" for a, b in zip(w, w[1:], strict=False)]
    return [zlib.crc32(g.encode()) % buckets + 1 for g in grams[:max_tokens]]


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
    """title (B, D), history (G, T, D) + mask (G, T), lengths (B, 2) [, user, points, tokens] -> logit (B,).

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
        self.null_item = nn.Parameter(torch.zeros(1, 1, p))
        # DIN attention MLP on [q, k, q - k, q * k]; its first layer is applied term by term (same maths,
        # the k term computed once per history instead of once per candidate)
        self.din_in = nn.Linear(4 * p, cfg.attn_hidden)
        self.din_out = nn.Sequential(nn.GELU(), nn.Linear(cfg.attn_hidden, 1))
        if cfg.user_dim:
            self.user_in = nn.Sequential(nn.Linear(cfg.user_dim, p), nn.LayerNorm(p))
        else:
            self.user_query = nn.Parameter(torch.randn(p) / p**0.5)
        n_in = 5 * p + N_TEXT_FEATURES + (2 * p if cfg.use_selling_points else 0)
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
    ) -> torch.Tensor:
        g, p = history.shape[0], self.cfg.proj_dim
        if row_hist is None:
            row_hist = torch.arange(g, device=history.device)
        feats = text_features(title, history, mask, lengths, self.cfg.max_history, row_hist)  # (B, F)
        q = self.item(title, title_tokens)  # (B, P)
        keys = torch.cat(
            [self.null_item.expand(g, 1, -1), self.item(history, history_tokens)], dim=1
        )  # (G,1+T,P)
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
        if self.cfg.use_selling_points:
            if points is None:
                raise ValueError("this reward model uses selling points: pass the ads to score()")
            sp = self.proj(points)
            parts += [sp, q * sp]
        return self.mlp(torch.cat(parts, dim=-1)).squeeze(-1)

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


def title_lengths(titles: Sequence[str]) -> np.ndarray:
    """(N, 2) float32: characters and whitespace words of each title."""
    return np.array([[len(t), len(t.split())] for t in titles], dtype=np.float32).reshape(-1, 2)


def points_text(ad: Ad, max_points: int) -> str:
    """The text embedded for an ad's selling points (title-free context)."""
    pts = ad.selling_points[:max_points] or ([ad.description[:300]] if ad.description else [])
    return " ; ".join(pts) or ad.title


class RewardModel:
    """The trained judge: a ``RewardNet`` plus the item encoder (and optional user model) it needs."""

    def __init__(
        self,
        config: RewardConfig,
        net: RewardNet | None = None,
        *,
        encoder: Any = None,
        user_model: UserVectorSource | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.config = config
        self.net = net if net is not None else RewardNet(config)
        self.net.eval()
        self._encoder = encoder
        self._cache_dir = cache_dir
        self.user_model = user_model
        if user_model is not None and config.user_dim != user_model.dim:
            raise ValueError(
                f"user model gives {user_model.dim}-d vectors but the reward model expects "
                f"user_dim={config.user_dim}; train the reward model with this user model"
            )

    # ---- construction -------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from creator.modeling.item_encoder import SentenceItemEncoder

            self._encoder = SentenceItemEncoder(self.config.item_encoder, cache_dir=self._cache_dir)
        return self._encoder

    def save_pretrained(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        save_file(
            {k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path / "model.safetensors")
        )
        return path

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        encoder: Any = None,
        user_model: UserVectorSource | None = None,
        cache_dir: str | Path | None = None,
    ) -> RewardModel:
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"{path} is not a reward model folder: expected config.json and "
                "model.safetensors (written by `hllm-creator train-reward --out DIR`, "
                "in DIR/reward_model)"
            )
        config = RewardConfig(**json.loads((path / "config.json").read_text()))
        net = RewardNet(config)
        net.load_state_dict(load_file(str(path / "model.safetensors")))
        if user_model is None and config.user_model_dir:
            user_model = load_user_model(config.user_model_dir)
        return cls(config, net, encoder=encoder, user_model=user_model, cache_dir=cache_dir)

    # ---- scoring ------------------------------------------------------------------------------
    def history_tensors(
        self, users: Sequence[User], vec_of: dict[str, np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, T, D) history vectors (left-aligned, most recent last), the (N, T) mask, (N, T, L) tokens."""
        c = self.config
        hist = np.zeros((len(users), c.max_history, c.item_dim), dtype=np.float32)
        mask = np.zeros((len(users), c.max_history), dtype=bool)
        tokens = np.zeros((len(users), c.max_history, c.max_tokens), dtype=np.int64)
        for i, u in enumerate(users):
            recent = u.recent(c.max_history)
            for j, h in enumerate(recent):
                hist[i, j] = vec_of[h.title]
            mask[i, : len(recent)] = True
            tokens[i, : len(recent)] = token_matrix([h.title for h in recent], c.token_buckets, c.max_tokens)
        return torch.from_numpy(hist), torch.from_numpy(mask), torch.from_numpy(tokens)

    def logits(
        self,
        users: Sequence[User],
        titles: Sequence[str],
        ads: Sequence[Ad] | None = None,
        *,
        user_vecs: np.ndarray | None = None,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Raw logits (N,), before any gaming penalty."""
        if len(users) != len(titles) or (ads is not None and len(ads) != len(titles)):
            raise ValueError(
                f"score() pairs users[i] with titles[i] (and ads[i]): got {len(users)} users, "
                f"{len(titles)} titles, {len(ads) if ads is not None else 'no'} ads"
            )
        if self.config.use_selling_points and ads is None:
            raise ValueError("this reward model uses the ads' selling points: pass ads=[...] to score()")
        if self.config.user_dim and user_vecs is None:
            if self.user_model is None:
                raise ValueError(
                    "this reward model expects user vectors: pass user_vecs or give it a user "
                    "model (RewardModel.from_pretrained(dir, user_model=...))"
                )
            user_vecs = self.user_model.embed_users(list(users))
        texts = sorted({*titles, *(h.title for u in users for h in u.recent(self.config.max_history))})
        pts = [points_text(a, self.config.max_points) for a in ads] if self.config.use_selling_points else []
        texts = sorted({*texts, *pts})
        if getattr(self.encoder, "dim", self.config.item_dim) != self.config.item_dim:
            raise ValueError(
                f"the item encoder gives {self.encoder.dim}-d vectors but this reward model was "
                f"trained on {self.config.item_dim}-d ones ({self.config.item_encoder}); load it "
                "with the encoder it was trained with"
            )
        vec_of = dict(zip(texts, self.encoder.encode(texts), strict=True))
        out = np.zeros(len(titles), dtype=np.float32)
        self.net.eval()
        with torch.no_grad():
            for s in range(0, len(titles), batch_size):
                e = min(s + batch_size, len(titles))
                # rows of one user share one history row (projected once)
                first: dict[tuple, int] = {}
                uniq: list[User] = []
                rows: list[int] = []
                for u in users[s:e]:
                    key = (u.user_id, tuple(h.title for h in u.recent(self.config.max_history)))
                    if key not in first:
                        first[key] = len(uniq)
                        uniq.append(u)
                    rows.append(first[key])
                row_hist = torch.tensor(rows, dtype=torch.long)
                hist, mask, h_tok = self.history_tensors(uniq, vec_of)
                title = torch.from_numpy(np.stack([vec_of[x] for x in titles[s:e]]))
                t_tok = torch.from_numpy(
                    token_matrix(titles[s:e], self.config.token_buckets, self.config.max_tokens)
                )
                lengths = torch.from_numpy(title_lengths(titles[s:e]))
                user = (
                    torch.from_numpy(np.asarray(user_vecs[s:e], dtype=np.float32))
                    if user_vecs is not None and self.config.user_dim
                    else None
                )
                points = torch.from_numpy(np.stack([vec_of[x] for x in pts[s:e]])) if pts else None
                out[s:e] = self.net(title, hist, mask, lengths, user, points, row_hist, t_tok, h_tok).numpy()
        return out

    def score(
        self,
        users: Sequence[User],
        titles: Sequence[str],
        ads: Sequence[Ad] | None = None,
        *,
        user_vecs: np.ndarray | None = None,
        raw: bool = False,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """(N,) click probabilities of users[i] on titles[i] (for ads[i]); gaming penalties unless raw."""
        z = self.logits(users, titles, ads, user_vecs=user_vecs, batch_size=batch_size)
        if not raw:
            z = z - self.penalties(users, titles, ads)
        return (1.0 / (1.0 + np.exp(-z.astype(np.float64)))).astype(np.float32)

    def penalties(
        self, users: Sequence[User], titles: Sequence[str], ads: Sequence[Ad] | None = None
    ) -> np.ndarray:
        """(N,) total anti-gaming penalty in logit units (see ``creator.gaming``)."""
        return np.array(
            [
                gaming_penalties(t, u, ads[i] if ads is not None else None, self.config.gaming)["total"]
                for i, (u, t) in enumerate(zip(users, titles, strict=True))
            ],
            dtype=np.float32,
        )

    def explain(self, user: User, title: str, ad: Ad | None = None) -> dict[str, float]:
        """Raw probability, each penalty, and the final probability for one (user, title)."""
        raw = float(self.score([user], [title], [ad] if ad is not None else None, raw=True)[0])
        pen = gaming_penalties(title, user, ad, self.config.gaming)
        z = np.log(max(raw, 1e-7) / max(1 - raw, 1e-7)) - pen["total"]
        return {
            "raw": raw,
            **{f"penalty_{k}": v for k, v in pen.items()},
            "score": float(1 / (1 + np.exp(-z))),
        }


def load_user_model(path: str | Path) -> UserVectorSource:
    """The usermodel helper's ``UserModel`` (imported lazily; a clear error if that part is missing)."""
    try:
        from creator.modeling.user_model import UserModel  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ValueError(
            f"user_model_dir={path} needs creator.modeling.user_model.UserModel, which is not "
            "installed in this checkout; train without user_model_dir or add the user model"
        ) from exc
    path = Path(path)
    return UserModel.from_pretrained(path / "user_model" if (path / "user_model").is_dir() else path)
