"""k-means segments: well-separated blobs are recovered, medoids are real members, the size rule holds."""

from __future__ import annotations

import numpy as np
import pytest

from creator.segments.clustering import auto_clusters, cluster_users


def blobs(n_per: int = 50, k: int = 4, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 10
    truth = np.repeat(np.arange(k), n_per)
    return (centers[truth] + rng.normal(size=(k * n_per, d)) * 0.1).astype(np.float32), truth


def test_recovers_separated_blobs_and_is_deterministic():
    vecs, truth = blobs()
    a = cluster_users(vecs, 4, seed=3)
    # same partition as the truth, up to relabelling: each true blob maps to exactly one segment
    assert all(len(set(a.labels[truth == t])) == 1 for t in range(4))
    assert len(set(a.labels)) == 4 and sorted(a.sizes.tolist()) == [50] * 4
    b = cluster_users(vecs, 4, seed=3)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centroids, b.centroids)


def test_medoid_representative_is_the_member_nearest_the_centroid():
    vecs, _ = blobs()
    a = cluster_users(vecs, 4, seed=0, representative="medoid")
    for k in range(4):
        members = np.flatnonzero(a.labels == k)
        d = ((vecs[members] - a.centroids[k]) ** 2).sum(axis=1)
        assert a.medoids[k] == members[d.argmin()]
        assert np.array_equal(a.representatives[k], vecs[a.medoids[k]])
    c = cluster_users(vecs, 4, seed=0)
    assert np.array_equal(c.representatives, c.centroids)


def test_size_rule_and_edge_cases():
    # ceil(sqrt(N)): 1 -> 1, 10 -> 4, 10,000 -> 100, 10^7 -> capped at 1,024
    assert [auto_clusters(n) for n in (1, 10, 10_000, 10**7)] == [1, 4, 100, 1024]
    vecs, _ = blobs(n_per=3, k=2)
    assert cluster_users(vecs, 50).k == 6  # more segments than users: one per user
    assert cluster_users(vecs, 1).sizes.tolist() == [6]
    with pytest.raises(ValueError, match="NaN"):
        cluster_users(np.full((3, 2), np.nan, dtype=np.float32), 2)
    with pytest.raises(ValueError, match="centroid"):
        cluster_users(vecs, 2, representative="mean")
