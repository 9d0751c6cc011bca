"""Where the generator's user vectors come from: a user model, a file of vectors, or a plain fallback.

``load_user_vectors(source, users)`` -> {user_id: float32 vector} for the users asked for:
- a ``train-encoders`` folder (``DIR/user_model``) or a ``UserModel`` folder: ``UserModel.embed_users``;
- ``vectors.parquet`` with columns ``user_id`` and ``vector`` (a list of floats);
- ``vectors.npz`` with arrays ``user_ids`` and ``vectors``;
- ``vectors.npy`` with the ids, one per line, in ``vectors.ids.txt`` beside it;
- ``"mean-minilm"``: the L2-normalised mean of MiniLM embeddings of the user's history titles, a
  parameter-free stand-in for a trained user model (benchmarks and smoke runs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from creator.records.errors import DataError
from creator.records.types import User

logger = logging.getLogger(__name__)


def _keyed(ids: list[str], vecs: np.ndarray, src: str) -> dict[str, np.ndarray]:
    if vecs.ndim != 2 or len(ids) != len(vecs):
        raise DataError(
            "user vectors and ids do not line up",
            file=src,
            expected="N ids and an (N, dim) array",
            got=f"{len(ids)} ids and shape {vecs.shape}",
            fix="write one id per vector row",
        )
    return {str(i): v.astype(np.float32) for i, v in zip(ids, vecs, strict=True)}


def read_vector_file(path: str | Path) -> dict[str, np.ndarray]:
    """All vectors in a .parquet / .npz / .npy(+.ids.txt) file, keyed by user id."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if not {"user_id", "vector"} <= set(table.column_names):
            raise DataError(
                "vector parquet lacks columns",
                file=str(path),
                field="user_id, vector",
                expected="columns user_id and vector",
                got=f"columns {table.column_names}",
                fix="write a parquet with user_id (string) and vector (list of floats)",
            )
        ids = [str(x) for x in table.column("user_id").to_pylist()]
        return _keyed(ids, np.asarray(table.column("vector").to_pylist(), dtype=np.float32), str(path))
    if path.suffix == ".npz":
        data = np.load(path, allow_pickle=False)
        if "user_ids" not in data or "vectors" not in data:
            raise DataError(
                "vector npz lacks arrays",
                file=str(path),
                expected="arrays user_ids and vectors",
                got=f"arrays {list(data.keys())}",
                fix="np.savez(path, user_ids=ids, vectors=vecs)",
            )
        return _keyed([str(x) for x in data["user_ids"]], data["vectors"], str(path))
    if path.suffix == ".npy":
        ids_file = path.with_suffix(".ids.txt")
        if not ids_file.exists():
            raise DataError(
                "a .npy of vectors needs its ids",
                file=str(path),
                expected=f"{ids_file.name} beside it",
                got="no ids file",
                fix="write one user id per line, in row order, to that file",
            )
        ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
        return _keyed(ids, np.load(path, allow_pickle=False), str(path))
    raise DataError(
        "unknown user vector source",
        file=str(path),
        expected="a UserModel dir, .parquet, .npz, .npy or 'mean-minilm'",
        got=path.suffix or "a file",
        fix="pass --user-vectors with one of the listed sources",
    )


def mean_history_vectors(users: list[User], encoder: Any = None) -> np.ndarray:
    """(N, item_dim) L2-normalised mean of history-title embeddings; an empty history gives zeros."""
    if encoder is None:
        from creator.modeling.item_encoder import SentenceItemEncoder

        encoder = SentenceItemEncoder()
    titles = sorted({t for u in users for t in u.history_titles})
    table = dict(zip(titles, encoder.encode(titles), strict=True)) if titles else {}
    out = np.zeros((len(users), encoder.dim), dtype=np.float32)
    for i, u in enumerate(users):
        if u.history:
            v = np.mean([table[t] for t in u.history_titles], axis=0)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-8)
    return out


MEAN_MINILM = "mean-minilm"


def segment_vectors(vecs: np.ndarray, labels: np.ndarray, k: int, medoids: np.ndarray | None = None) -> np.ndarray:
    """(k, d): one vector per segment in a space other than the one the users were clustered in (the
    generator's, when it was trained on ``mean-minilm`` vectors): the L2-normalised mean of the members'
    vectors, or, with ``medoids`` (index of each segment's medoid user, -1 when empty), the medoid's vector.
    An empty segment gets zeros.

        >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
        >>> segment_vectors(v, np.array([0, 1, 1]), 3).round(3).tolist()
        [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    vecs, labels = np.asarray(vecs, dtype=np.float32), np.asarray(labels)
    if len(vecs) != len(labels):
        raise ValueError(f"{len(vecs)} vectors for {len(labels)} segment labels")
    out = np.zeros((k, vecs.shape[1]), dtype=np.float32)
    for s in range(k):
        if medoids is not None and medoids[s] >= 0:
            out[s] = vecs[medoids[s]]
            continue
        members = vecs[labels == s]
        if len(members):
            mean = members.mean(axis=0)
            out[s] = mean / max(float(np.linalg.norm(mean)), 1e-8)
    return out


def load_user_vectors(source: str | Path, users: list[User], *, encoder: Any = None) -> dict[str, np.ndarray]:
    """Vectors for ``users`` from ``source`` (see the module docstring); every user must get one."""
    if str(source) == MEAN_MINILM:
        vecs = mean_history_vectors(users, encoder)
        return {u.user_id: v for u, v in zip(users, vecs, strict=True)}
    path = Path(source)
    if not path.exists():
        raise DataError(
            "user vector source not found",
            file=str(path),
            expected="a train-encoders folder, a vector file or 'mean-minilm'",
            got="nothing at that path",
            fix="run hllm-creator train-encoders first or pass --user-vectors mean-minilm",
        )
    model_dir = path / "user_model" if (path / "user_model").is_dir() else path
    if model_dir.is_dir():
        from creator.modeling.user_model import UserModel  # owned by the user-model issue

        model = UserModel.from_pretrained(model_dir)
        vecs = model.embed_users(users, progress=True)
        return {u.user_id: np.asarray(v, dtype=np.float32) for u, v in zip(users, vecs, strict=True)}
    table = read_vector_file(path)
    missing = [u.user_id for u in users if u.user_id not in table]
    if missing:
        raise DataError(
            f"{len(missing)} users have no vector",
            file=str(path),
            field="user_id",
            expected="a vector for every user in the training data",
            got=f"missing e.g. {missing[:5]}",
            fix="embed every user with the same user model (hllm-creator train-encoders)",
        )
    return {u.user_id: table[u.user_id] for u in users}
