"""The user-ad match head (HLLM-Creator's fourth loss): one logit for a (user vector, ad item vector) pair.

Trained with one positive (the user's next item) and ``n`` sampled negatives (default 8), then calibrated
by Platt scaling on held-out users, so ``proba`` reads "chance this ad is the one the user takes, among
1 true ad and n random catalog ads". ``creator.segments.matching`` prunes (segment, ad) pairs with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class MatchHeadConfig:
    """Width of the match head and how many sampled negatives accompany each positive in training."""

    hidden: int = 128
    dropout: float = 0.1
    negatives: int = 8

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ValueError(f"MatchHeadConfig.hidden must be >= 1, got {self.hidden}")
        if self.negatives < 1:
            raise ValueError(
                f"MatchHeadConfig.negatives must be >= 1, got {self.negatives}; "
                "HLLM-Creator uses 8 negatives per positive"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MatchHeadConfig.dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class MatchHead(nn.Module):
    """(user (B, dim), ad (B, item_dim)) -> logit (B,). ``proba`` applies the fitted Platt scaling."""

    def __init__(self, user_dim: int, item_dim: int, config: MatchHeadConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or MatchHeadConfig()
        self.user_dim, self.item_dim = user_dim, item_dim
        self.user_proj = nn.Linear(user_dim, c.hidden)
        self.ad_proj = nn.Linear(item_dim, c.hidden)
        self.mlp = nn.Sequential(
            nn.LayerNorm(3 * c.hidden),
            nn.Linear(3 * c.hidden, c.hidden),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.hidden, 1),
        )
        # Platt scaling, fitted after training (identity until then)
        self.register_buffer("calib_a", torch.tensor(1.0))
        self.register_buffer("calib_b", torch.tensor(0.0))

    def _logits(self, u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([u, a, u * a], dim=-1)).squeeze(-1)

    def forward(self, user_vecs: torch.Tensor, ad_vecs: torch.Tensor) -> torch.Tensor:
        return self._logits(self.user_proj(user_vecs), self.ad_proj(ad_vecs))

    def pairwise_logits(
        self, user_vecs: torch.Tensor, ad_vecs: torch.Tensor, chunk: int = 64
    ) -> torch.Tensor:
        """Every user with every ad: (N, dim) x (M, item_dim) -> (N, M) logits, in user chunks."""
        a = self.ad_proj(ad_vecs)  # (M, h)
        u_all = self.user_proj(user_vecs)  # (N, h)
        rows = []
        for i in range(0, u_all.shape[0], chunk):
            u = u_all[i : i + chunk, None, :].expand(-1, a.shape[0], -1)  # (n, M, h)
            rows.append(self._logits(u, a[None].expand(u.shape[0], -1, -1)))
        return torch.cat(rows) if rows else u_all.new_zeros(0, a.shape[0])

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.calib_a * logits + self.calib_b)

    def probabilities(self, user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
        """Calibrated match probability of every user with every ad: (N, dim), (M, item_dim) -> (N, M) float32."""
        user_vecs = np.asarray(user_vecs, dtype=np.float32)
        ad_vecs = np.asarray(ad_vecs, dtype=np.float32)
        if user_vecs.ndim != 2 or user_vecs.shape[1] != self.user_dim:
            raise ValueError(
                f"user_vecs must be (N, {self.user_dim}), got {user_vecs.shape}; "
                "embed users with the same UserModel (model.embed_users)"
            )
        if ad_vecs.ndim != 2 or ad_vecs.shape[1] != self.item_dim:
            raise ValueError(
                f"ad_vecs must be (M, {self.item_dim}), got {ad_vecs.shape}; "
                "embed ad titles with model.embed_items"
            )
        was_training = self.training
        self.eval()
        with torch.no_grad():
            probs = self.calibrate(self.pairwise_logits(torch.from_numpy(user_vecs), torch.from_numpy(ad_vecs)))
        self.train(was_training)
        return probs.numpy().astype(np.float32)

    def fit_platt(self, logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Fit ``a, b`` of ``sigmoid(a * logit + b)`` by logistic regression on held-out (logit, label)."""
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels).astype(int)
        if len(set(labels.tolist())) < 2:
            raise ValueError(
                "Platt scaling needs both positives and negatives in the held-out pairs; "
                "give the calibration split more users"
            )
        x = np.asarray(logits, dtype=np.float64)[:, None]
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(x, labels)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        self.calib_a.fill_(a)
        self.calib_b.fill_(b)
        return a, b
