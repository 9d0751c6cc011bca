"""The user model bundle: item encoder (by name) + UserEncoder + MatchHead, saved as one folder.

The example needs a trained folder (``hllm-creator train-encoders``), so it is not run as a doctest:

    >>> model = UserModel.from_pretrained("runs/encoders/user_model")        # doctest: +SKIP
    >>> vecs = model.embed_users(users, progress=True)                         # doctest: +SKIP
    >>> vecs.shape == (len(users), model.dim)                                  # doctest: +SKIP
    True

Folder layout: ``config.json`` (item encoder name, encoder and head configs), ``model.safetensors``
(encoder + head weights, with the head's Platt scaling), and ``item_encoder/`` / ``user_backbone/`` when
those are HF language models. History items and ads are embedded from their titles (``item_text``),
the same text in training and inference.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from creator.modeling.item_encoder import ItemEncoder, LMItemEncoder, build_item_encoder
from creator.modeling.match_head import MatchHead, MatchHeadConfig
from creator.modeling.user_encoder import UserEncoder, UserEncoderConfig
from creator.records.types import Ad, HistoryItem, User

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def item_text(item: Ad | HistoryItem | str) -> str:
    """The text an item is embedded from: its title (history entries carry nothing else)."""
    return item if isinstance(item, str) else item.title


class UserModel:
    """Everything needed to turn users into vectors and score them against ads."""

    def __init__(
        self,
        encoder: UserEncoder,
        match_head: MatchHead,
        item_encoder_name: str,
        *,
        item_encoder: ItemEncoder | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if match_head.user_dim != encoder.dim or match_head.item_dim != encoder.config.item_dim:
            raise ValueError(
                f"match head expects ({match_head.user_dim}, {match_head.item_dim}) but the encoder "
                f"gives ({encoder.dim}, {encoder.config.item_dim}); build both from one config"
            )
        self.encoder = encoder.eval()
        self.match_head = match_head.eval()
        self.item_encoder_name = item_encoder_name
        self._item_encoder = item_encoder
        self.cache_dir = cache_dir

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def item_dim(self) -> int:
        return self.encoder.config.item_dim

    @property
    def max_history(self) -> int:
        return self.encoder.config.max_len

    @property
    def item_encoder(self) -> ItemEncoder:
        """Built on first use (loading MiniLM takes a few seconds)."""
        if self._item_encoder is None:
            self._item_encoder = build_item_encoder(self.item_encoder_name, cache_dir=self.cache_dir)
        if self._item_encoder.dim != self.item_dim:
            raise ValueError(
                f"item encoder {self.item_encoder_name!r} gives {self._item_encoder.dim}-d vectors "
                f"but the user encoder was trained on {self.item_dim}-d; use the same item encoder"
            )
        return self._item_encoder

    def embed_items(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(N, item_dim) float32 L2-normalised item vectors (ads: pass ``item_text(ad)``)."""
        return np.asarray(self.item_encoder.encode(list(texts), progress=progress), dtype=np.float32)

    def embed_users(
        self,
        users: Sequence[User],
        *,
        batch_size: int = 256,
        progress: bool = False,
        item_vecs: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """(N, dim) float32 user vectors from each user's ``max_history`` most recent items.

        Every distinct history title is embedded once; ``item_vecs`` (title -> vector) skips even that.
        Users with an empty history get the learned user token's vector.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        histories = [[item_text(h) for h in u.recent(self.max_history)] for u in users]
        known = dict(item_vecs or {})
        todo = sorted({t for h in histories for t in h if t not in known})
        if todo:
            known.update(zip(todo, self.embed_items(todo, progress=progress), strict=True))
        out = np.zeros((len(users), self.dim), dtype=np.float32)
        self.encoder.eval()
        with torch.no_grad():
            for i in tqdm(range(0, len(users), batch_size), disable=not progress, desc="users"):
                chunk = histories[i : i + batch_size]
                vecs, mask = history_tensor([[known[t] for t in h] for h in chunk], self.item_dim)
                out[i : i + len(chunk)] = self.encoder(vecs, mask).numpy()
        return out

    def match(self, user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
        """Calibrated match probability of every user vector with every ad vector: (N, dim), (M, item_dim) ->
        (N, M) float32 (the match head, ``MatchHead.probabilities``)."""
        return self.match_head.probabilities(user_vecs, ad_vecs)

    def save_pretrained(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        enc_cfg = self.encoder.config.to_dict()
        item_name = self.item_encoder_name
        if isinstance(self._item_encoder, LMItemEncoder):
            self._item_encoder.save_pretrained(path / "item_encoder")
            item_name = f"lm-{self._item_encoder.pooling}:item_encoder"
        if self.encoder.backbone is not None:
            self.encoder.backbone.save_pretrained(path / "user_backbone")
            enc_cfg["backbone"] = "user_backbone"
        state = {
            f"encoder.{k}": v for k, v in self.encoder.state_dict().items() if not k.startswith("backbone.")
        }
        state.update({f"match_head.{k}": v for k, v in self.match_head.state_dict().items()})
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path / WEIGHTS_FILE))
        config = {
            "format_version": FORMAT_VERSION,
            "item_encoder": item_name,
            "user_encoder": enc_cfg,
            "match_head": self.match_head.config.to_dict(),
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        item_encoder: ItemEncoder | None = None,
        cache_dir: str | Path | None = None,
    ) -> UserModel:
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / CONFIG_FILE).exists() or not (path / WEIGHTS_FILE).exists():
            raise FileNotFoundError(
                f"{path} is not a saved UserModel (expected {CONFIG_FILE} and {WEIGHTS_FILE}); "
                "point at DIR/user_model written by `hllm-creator train-encoders --out DIR`"
            )
        config: dict[str, Any] = json.loads((path / CONFIG_FILE).read_text())
        enc_cfg = dict(config["user_encoder"])
        if enc_cfg.get("backbone") and (path / enc_cfg["backbone"]).exists():
            enc_cfg["backbone"] = str(path / enc_cfg["backbone"])
        item_name = config["item_encoder"]
        prefix, _, rest = item_name.partition(":")
        if prefix.startswith("lm") and rest and (path / rest).exists():
            item_name = f"{prefix}:{path / rest}"
        encoder = UserEncoder(UserEncoderConfig(**enc_cfg))
        head = MatchHead(encoder.dim, encoder.config.item_dim, MatchHeadConfig(**config["match_head"]))
        state = load_file(str(path / WEIGHTS_FILE))
        missing, unexpected = encoder.load_state_dict(
            {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}, strict=False
        )
        if unexpected or [k for k in missing if not k.startswith("backbone.")]:
            raise ValueError(
                f"{path / WEIGHTS_FILE} does not match its config (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}); re-save the model"
            )
        head.load_state_dict(
            {k[len("match_head.") :]: v for k, v in state.items() if k.startswith("match_head.")}
        )
        return cls(encoder, head, item_name, item_encoder=item_encoder, cache_dir=cache_dir)


def history_tensor(
    histories: Sequence[Sequence[np.ndarray]], item_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T, item_dim) vectors and (B, T) bool mask from per-user lists of item vectors."""
    T = max((len(h) for h in histories), default=0) or 1
    vecs = np.zeros((len(histories), T, item_dim), dtype=np.float32)
    mask = np.zeros((len(histories), T), dtype=bool)
    for i, h in enumerate(histories):
        if len(h):
            vecs[i, : len(h)] = np.stack(h)
            mask[i, : len(h)] = True
    return torch.from_numpy(vecs), torch.from_numpy(mask)
