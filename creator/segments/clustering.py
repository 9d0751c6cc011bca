"""Audience segments: k-means over user vectors (faiss), with one representative vector per segment.

A segment's representative is what the generator personalises for: ``"centroid"`` (the mean user
vector, what HLLM-Creator's public eval uses) or ``"medoid"`` (the real user nearest the centroid, so
the vector is one the model saw in training). The nearest real user is kept either way
(``medoids``): the judge scores a segment's titles against that user.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> vecs = np.concatenate([rng.normal(0, 0.1, (5, 4)), rng.normal(5, 0.1, (5, 4))]).astype("float32")
    >>> a = cluster_users(vecs, 2, seed=0)
    >>> sorted(a.sizes.tolist()), len(set(a.labels[:5])), bool(a.labels[0] != a.labels[5])
    ([5, 5], 1, True)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

Representative = Literal["centroid", "medoid"]
MAX_AUTO_CLUSTERS = 1024


@dataclass
class ClusterAssignment:
    """``labels[i]`` is user i's segment; segment k has ``sizes[k]`` users and is generated for with
    ``representatives[k]``; ``medoids[k]`` is the index of its real user nearest the centroid."""

    labels: np.ndarray  # (N,) int64
    centroids: np.ndarray  # (K, D) float32
    representatives: np.ndarray  # (K, D) float32
    sizes: np.ndarray  # (K,) int64
    medoids: np.ndarray  # (K,) int64, index into the clustered vectors; -1 for an empty segment

    @property
    def k(self) -> int:
        return len(self.centroids)


def auto_clusters(n_users: int) -> int:
    """The size rule used when K is not given: ``ceil(sqrt(N))``, at most 1,024 and at most N.

    sqrt keeps segments growing with the audience (about sqrt(N) users each) while generator calls
    grow only with sqrt(N); 1,024 caps the calls per ad for very large audiences.
    """
    if n_users < 1:
        raise ValueError("cannot choose a number of segments for 0 users; give at least one user")
    return max(1, min(n_users, MAX_AUTO_CLUSTERS, math.ceil(math.sqrt(n_users))))


def cluster_users(vecs: np.ndarray, k: int | None = None, *, seed: int = 0,
                  representative: Representative = "centroid", niter: int = 20,
                  max_points_per_centroid: int = 128) -> ClusterAssignment:
    """k-means of ``vecs`` (N, D) into ``k`` segments (``auto_clusters(N)`` if None), deterministic per seed.

    faiss trains on at most ``max_points_per_centroid * k`` sampled vectors (128 per segment), then assigns
    every vector; this is what makes 1M x 384 into 1,024 segments fit in a minute on 2 cores.
    """
    import faiss

    if representative not in ("centroid", "medoid"):
        raise ValueError(f"representative must be 'centroid' or 'medoid', got {representative!r}")
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if vecs.ndim != 2 or len(vecs) == 0:
        raise ValueError(f"user vectors must be a non-empty (N, D) array, got shape {vecs.shape}")
    if not np.isfinite(vecs).all():
        bad = int((~np.isfinite(vecs)).any(axis=1).sum())
        raise ValueError(f"{bad} user vectors contain NaN or inf; fix the user model (cold-start users must "
                         "get a defined vector) before clustering")
    n, d = vecs.shape
    k = auto_clusters(n) if k is None else k
    if k < 1:
        raise ValueError(f"the number of segments must be >= 1, got {k}")
    if k > n:
        logger.warning("asked for %d segments but there are only %d users; using %d", k, n, n)
        k = n
    if k == 1:
        centroids = vecs.mean(axis=0, keepdims=True)
        labels = np.zeros(n, dtype=np.int64)
    else:
        km = faiss.Kmeans(d, k, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid,
                          verbose=False)
        km.train(vecs)
        centroids = km.centroids.astype(np.float32)
        _, assigned = km.index.search(vecs, 1)
        labels = assigned[:, 0].astype(np.int64)
    sizes = np.bincount(labels, minlength=k).astype(np.int64)
    medoids = _nearest_members(vecs, labels, centroids)
    if representative == "medoid":
        reps = np.where((medoids >= 0)[:, None], vecs[np.maximum(medoids, 0)], centroids)
    else:
        reps = centroids.copy()
    empty = int((sizes == 0).sum())
    if empty:
        logger.warning("%d of %d segments are empty; they get no users and no generation", empty, k)
    return ClusterAssignment(labels=labels, centroids=centroids, representatives=reps.astype(np.float32),
                             sizes=sizes, medoids=medoids)


def _nearest_members(vecs: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """For each segment, the index of its member closest (L2) to its centroid; -1 if it has none."""
    dist = ((vecs - centroids[labels]) ** 2).sum(axis=1)  # (N,) squared distance to own centroid
    order = np.lexsort((dist, labels))  # by segment, then distance: the first of each segment wins
    medoids = np.full(len(centroids), -1, dtype=np.int64)
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    medoids[labels[order][first]] = order[first]
    return medoids


def one_segment_per_user(vecs: np.ndarray) -> ClusterAssignment:
    """Every user its own segment, represented by its own vector: per-user generation, the baseline
    the segment pipeline is measured against (one generator request per kept (user, ad) pair)."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if vecs.ndim != 2 or len(vecs) == 0:
        raise ValueError(f"user vectors must be a non-empty (N, D) array, got shape {vecs.shape}")
    n = len(vecs)
    return ClusterAssignment(labels=np.arange(n, dtype=np.int64), centroids=vecs.copy(),
                             representatives=vecs.copy(), sizes=np.ones(n, dtype=np.int64),
                             medoids=np.arange(n, dtype=np.int64))
