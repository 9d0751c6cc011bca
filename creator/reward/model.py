"""CTR reward model: p(click | user history, ad title text [, selling points]), the project's judge.

The title is embedded by the frozen item encoder (offline MiniLM by default, cached on disk), so
any new title can be scored and two titles of one ad score differently for one user. A DIN-style
attention of the candidate title over the user's history vectors gives the interest the title
speaks to; a user vector (our own learned pooling of the history, or a trained ``UserModel``'s
vector when ``user_model_dir`` / ``user_vecs`` is given) gives the user's overall taste. Both,
the title vector, their products, a few text features (cosines to the history, length) and the
training users' popularity / co-occurrence counts of the ad with the history (``creator.reward.cooccurrence``;
they need the ad ids, so pass ``ads`` to ``score``) go into an MLP trained with BCE
(``hllm-creator train-reward``). Optionally (``config.item_ids``) each known item id also has a learned
vector added to the item's text representation; unknown ids (cold ads, no ``ads`` given) share one row.
``score`` subtracts the explicit
anti-gaming penalties of ``creator.reward.gaming`` unless ``raw=True``.

The example needs a trained model folder (``hllm-creator train-reward``), so it is not run as a doctest:

    >>> rm = RewardModel.from_pretrained("runs/reward/reward_model")         # doctest: +SKIP
    >>> titles = ["Gel Pens, 12 Colors", "Gel Pens for Bullet Journals, 12 Colors"]  # doctest: +SKIP
    >>> rm.score([user, user], titles)                                      # doctest: +SKIP
    array([0.31, 0.47], dtype=float32)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from creator.records.types import Ad, User
from creator.reward.cooccurrence import N_COLLAB_FEATURES, ItemCooccurrence
from creator.reward.gaming import GamingConfig, gaming_penalties
from creator.reward.net import REWARD_NET_VERSION, RewardConfig, RewardNet, title_lengths, token_matrix

__all__ = [
    "ItemCooccurrence",
    "RewardConfig",
    "RewardModel",
    "RewardNet",
    "UserVectorSource",
    "find_user_model_dir",
    "load_user_model",
    "points_text",
]
COOCCURRENCE_FILE = "cooccurrence.npz"
ITEM_IDS_FILE = "item_ids.json"  # the known item ids, in the order of the id-embedding rows 1..id_vocab

logger = logging.getLogger(__name__)


class UserVectorSource(Protocol):
    """What the reward model needs from a trained user model (``creator.modeling.user_model.UserModel``)."""

    dim: int

    def embed_users(
        self, users: list[User], *, batch_size: int = 256, progress: bool = False
    ) -> np.ndarray: ...


def points_text(ad: Ad, max_points: int) -> str:
    """The text embedded for an ad's selling points (title-free context)."""
    pts = ad.selling_points[:max_points] or ([ad.description[:300]] if ad.description else [])
    return " ; ".join(pts) or ad.title


class RewardModel:
    """The trained judge: a ``RewardNet`` plus the item encoder (and optional user model) it needs.

    ``cooccurrence``: the training users' counts (``creator.reward.cooccurrence``) the network reads when
    ``config.cooccurrence``; saved beside the weights. Without them every ad is scored as cold.
    ``item_ids``: the known item ids when ``config.item_ids`` (row i + 1 of the id embeddings is
    ``item_ids[i]``; any other id, or a missing ad, is "unknown"); saved beside the weights.
    """

    def __init__(
        self,
        config: RewardConfig,
        net: RewardNet | None = None,
        *,
        encoder: Any = None,
        user_model: UserVectorSource | None = None,
        cache_dir: str | Path | None = None,
        cooccurrence: ItemCooccurrence | None = None,
        item_ids: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.item_ids = list(item_ids or [])
        if config.item_ids and len(self.item_ids) != config.id_vocab:
            raise ValueError(
                f"this reward model has {config.id_vocab} item-id embeddings but {len(self.item_ids)} item ids "
                f"were given; pass the ids it was trained with ({ITEM_IDS_FILE} beside its weights)"
            )
        self.id_index = {a: i + 1 for i, a in enumerate(self.item_ids)}
        self.cooccurrence = cooccurrence if cooccurrence is not None else ItemCooccurrence([], [], {}, 0)
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
        saved = self.config.to_dict()
        if saved.get("user_model_dir"):  # relative to this folder, so the run's folder can move as a whole
            saved["user_model_dir"] = os.path.relpath(Path(saved["user_model_dir"]).resolve(), path.resolve())
        (path / "config.json").write_text(json.dumps(saved, indent=2) + "\n")
        save_file(
            {k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path / "model.safetensors")
        )
        if self.config.cooccurrence:
            self.cooccurrence.save(path / COOCCURRENCE_FILE)
        if self.config.item_ids:
            (path / ITEM_IDS_FILE).write_text(json.dumps(self.item_ids) + "\n")
        return path

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        encoder: Any = None,
        user_model: UserVectorSource | None = None,
        cache_dir: str | Path | None = None,
        gaming: GamingConfig | None = None,
    ) -> RewardModel:
        """Load a saved model; ``gaming`` replaces its saved anti-gaming policy (no retraining needed)."""
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"{path} is not a reward model folder: expected config.json and "
                "model.safetensors (written by `hllm-creator train-reward --out DIR`, "
                "in DIR/reward_model)"
            )
        saved = json.loads((path / "config.json").read_text())
        if saved.get("version", 1) != REWARD_NET_VERSION:
            raise ValueError(
                f"{path} holds a reward model of network version {saved.get('version', 1)}, this code reads "
                f"version {REWARD_NET_VERSION} (versions 2-4 added co-occurrence features, item-id embeddings "
                "and punctuation-aware title bigrams); "
                "retrain it with `hllm-creator train-reward`"
            )
        config = RewardConfig(**saved)
        if gaming is not None:
            config.gaming = gaming
        net = RewardNet(config)
        try:
            net.load_state_dict(load_file(str(path / "model.safetensors")))
        except RuntimeError as exc:  # weights of another version of the network
            raise ValueError(
                f"{path} holds a reward model whose weights do not fit this version of the network "
                f"({str(exc).splitlines()[-1].strip()[:160]}); retrain it with `hllm-creator train-reward`"
            ) from None
        if config.user_model_dir:
            found = find_user_model_dir(path, config.user_model_dir)
            if found is None and user_model is None:
                raise FileNotFoundError(
                    f"{path} was trained with the user model in {config.user_model_dir!r} (relative to that "
                    "folder), which is not there; copy the train-encoders output along with the reward model "
                    "(keep the run's folder layout), or pass "
                    "RewardModel.from_pretrained(..., user_model=UserModel.from_pretrained(DIR))"
                )
            config.user_model_dir = str(found or config.user_model_dir)
        if user_model is None and config.user_model_dir:
            user_model = load_user_model(config.user_model_dir)
        cooc = ItemCooccurrence.load(path / COOCCURRENCE_FILE) if config.cooccurrence else None
        item_ids = None
        if config.item_ids:
            if not (path / ITEM_IDS_FILE).exists():
                raise FileNotFoundError(
                    f"{path / ITEM_IDS_FILE} is missing: this reward model reads the item ids saved beside its "
                    "weights by `hllm-creator train-reward`; copy the whole reward_model folder, or retrain it"
                )
            item_ids = json.loads((path / ITEM_IDS_FILE).read_text())
        return cls(
            config,
            net,
            encoder=encoder,
            user_model=user_model,
            cache_dir=cache_dir,
            cooccurrence=cooc,
            item_ids=item_ids,
        )

    # ---- scoring ------------------------------------------------------------------------------
    def history_tensors(
        self, users: Sequence[User], vec_of: dict[str, np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, T, D) history vectors (left-aligned, most recent last), the (N, T) mask, (N, T, L) tokens,
        (N, T) item-id rows (0 = unknown or padding)."""
        c = self.config
        hist = np.zeros((len(users), c.max_history, c.item_dim), dtype=np.float32)
        mask = np.zeros((len(users), c.max_history), dtype=bool)
        tokens = np.zeros((len(users), c.max_history, c.max_tokens), dtype=np.int64)
        ids = np.zeros((len(users), c.max_history), dtype=np.int64)
        for i, u in enumerate(users):
            recent = u.recent(c.max_history)
            for j, h in enumerate(recent):
                hist[i, j] = vec_of[h.title]
                ids[i, j] = self.id_index.get(h.item_id, 0)
            mask[i, : len(recent)] = True
            tokens[i, : len(recent)] = token_matrix([h.title for h in recent], c.token_buckets, c.max_tokens)
        return torch.from_numpy(hist), torch.from_numpy(mask), torch.from_numpy(tokens), torch.from_numpy(ids)

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
                    key = (u.user_id, tuple((h.item_id, h.title) for h in u.recent(self.config.max_history)))
                    if key not in first:
                        first[key] = len(uniq)
                        uniq.append(u)
                    rows.append(first[key])
                row_hist = torch.tensor(rows, dtype=torch.long)
                hist, mask, h_tok, h_ids = self.history_tensors(uniq, vec_of)
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
                collab = (
                    torch.from_numpy(self.collab_features(users[s:e], ads[s:e] if ads is not None else None))
                    if self.config.cooccurrence
                    else None
                )
                t_ids = (
                    torch.tensor([self.id_index.get(a.ad_id, 0) for a in ads[s:e]], dtype=torch.long)
                    if ads is not None
                    else torch.zeros(e - s, dtype=torch.long)
                )
                out[s:e] = self.net(
                    title, hist, mask, lengths, user, points, row_hist, t_tok, h_tok, collab, t_ids, h_ids
                ).numpy()
        return out

    def collab_features(self, users: Sequence[User], ads: Sequence[Ad] | None) -> np.ndarray:
        """(N, N_COLLAB_FEATURES) co-occurrence features of users[i] with ads[i] (zeros without ads)."""
        n = self.config.max_history
        out = [
            self.cooccurrence.features(
                [h.item_id for h in u.recent(n)], [ads[i].ad_id if ads is not None else None]
            )
            for i, u in enumerate(users)
        ]
        return np.concatenate(out) if out else np.zeros((0, N_COLLAB_FEATURES), np.float32)

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
        """(N,) total anti-gaming penalty in logit units (see ``creator.reward.gaming``)."""
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


def find_user_model_dir(model_dir: str | Path, saved: str) -> Path | None:
    """The user model folder a saved reward model names (``config.json``'s ``user_model_dir``), resolved:
    relative to the reward model's folder (how it is saved) or as written (absolute, or saved by an older
    version); None when it is in neither place."""
    for candidate in (Path(model_dir) / saved, Path(saved)):
        if candidate.exists():
            return candidate.resolve()
    return None


def load_user_model(path: str | Path) -> UserVectorSource:
    """The trained ``UserModel`` of ``hllm-creator train-encoders`` (imported lazily)."""
    try:
        from creator.modeling.user_model import UserModel  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ValueError(
            f"user_model_dir={path} needs creator.modeling.user_model.UserModel, which is not "
            "installed in this checkout; train without user_model_dir or add the user model"
        ) from exc
    path = Path(path)
    return UserModel.from_pretrained(path / "user_model" if (path / "user_model").is_dir() else path)
