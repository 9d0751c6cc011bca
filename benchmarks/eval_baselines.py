"""Baseline systems on real data, then the evaluation report that compares them.

    python benchmarks/eval_baselines.py --data ../shared/data --users 300 --ads 20 --out runs/eval_baselines

Writes creative files for four transparent baselines on the same (user, ad) pairs of the Amazon-2018
Office_Products data (``--users`` users with >= 3 history items x the ``--ads`` most-taken ads):

* ``copy-with-brand``: "<title> | <brand>", one title per ad (non-personal edit);
* ``point-match``: per user, the original title followed by the ad's selling point closest (MiniLM)
  to the user's prior history: retrieval personalization that only says what the ad says;
* ``point-match-k8``: the same per segment (k-means, k=8, on the users' history profiles), the
  segment centroid standing for its users; writes the user -> segment table;
* ``history-echo``: the title plus the first words of the user's most similar past item: a naive
  "personalization" that states things the ad does not (the factuality metric should catch it).

The copy-the-original system is added by the report itself. Then runs ``hllm-creator eval`` with the
MiniLM proxy judge and prints the headline table (and the wall time of each step).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creator.io import load_catalog, write_records  # noqa: E402
from creator.records.types import Creative  # noqa: E402
from eval.metrics.personalization import HistorySimilarity, history_before  # noqa: E402


def clip(text: str, limit: int = 120) -> str:
    """Cut at a word boundary to at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0].rstrip(",;:-|")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data", help="folder holding amazon_office_products/")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--ads", type=int, default=20)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-pairs", type=int, default=2000)
    p.add_argument("--out", default="runs/eval_baselines")
    args = p.parse_args(argv)
    out = Path(args.out)
    t0 = time.perf_counter()
    cat = load_catalog(Path(args.data) / "amazon_office_products", "amazon2018")
    counts: dict[str, int] = {}
    for it in cat.interactions:
        counts[it.ad_id] = counts.get(it.ad_id, 0) + 1
    ad_ids = [a for a in sorted(counts, key=lambda a: (-counts[a], a)) if cat.ads[a].selling_points][
        : args.ads
    ]
    rng = np.random.default_rng(args.seed)
    pool = sorted(u for u, user in cat.users.items() if len(user.history) >= 3)
    user_ids = sorted(rng.choice(pool, size=min(args.users, len(pool)), replace=False).tolist())
    t_load = time.perf_counter() - t0

    from sklearn.cluster import KMeans

    from creator.modeling.item_encoder import SentenceItemEncoder

    t0 = time.perf_counter()
    enc = SentenceItemEncoder(cache_dir=out / "cache")
    sim = HistorySimilarity(enc)
    users = [cat.users[u] for u in user_ids]
    full_profiles = sim.profiles([u.history_titles for u in users])  # (U, D), for segments
    km = KMeans(n_clusters=args.k, n_init=4, random_state=args.seed).fit(full_profiles)
    centroids = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    segments = {u: int(s) for u, s in zip(user_ids, km.labels_, strict=True)}
    seen_titles = sorted({t for u in users for t in u.history_titles})
    title_vec = dict(zip(seen_titles, enc.encode(seen_titles).astype(np.float64), strict=True))
    brand_title, match_user, match_seg, echo = [], [], [], []
    for ad_id in ad_ids:
        ad = cat.ads[ad_id]
        points = ad.selling_points
        pvecs = enc.encode(points).astype(np.float64)  # (P, D)
        ad_vec = enc.encode([ad.title])[0].astype(np.float64)
        brand_title += [
            Creative(
                ad_id,
                clip(f"{ad.title} | {ad.brand}" if ad.brand else ad.title),
                "personalized",
                segment_id=s,
            )
            for s in range(args.k)
        ]
        for s in range(args.k):
            best = points[int(np.argmax(pvecs @ centroids[s]))]
            match_seg.append(
                Creative(
                    ad_id,
                    clip(f"{ad.title} - {best}"),
                    "personalized",
                    segment_id=s,
                    selling_points_used=[best],
                )
            )
        hist = [history_before(u, ad_id) for u in users]
        prof = sim.profiles(hist)  # (U, D) prior history only
        best_idx = np.argmax(prof @ pvecs.T, axis=1)
        for u, h, i in zip(users, hist, best_idx, strict=True):
            match_user.append(
                Creative(
                    ad_id,
                    clip(f"{ad.title} - {points[i]}"),
                    "personalized",
                    user_id=u.user_id,
                    selling_points_used=[points[i]],
                )
            )
            if h:
                near = h[int(np.argmax(np.stack([title_vec[t] for t in h]) @ ad_vec))]
                echo.append(
                    Creative(
                        ad_id,
                        clip(f"{ad.title}, like your {' '.join(near.split()[:4])}"),
                        "personalized",
                        user_id=u.user_id,
                    )
                )
            else:
                echo.append(Creative(ad_id, ad.title, "original", user_id=u.user_id))
    files = {
        "copy-with-brand": write_records(brand_title, out / "copy_with_brand.jsonl"),
        "point-match": write_records(match_user, out / "point_match.jsonl"),
        "point-match-k8": write_records(match_seg, out / "point_match_k8.jsonl"),
        "history-echo": write_records(echo, out / "history_echo.jsonl"),
    }
    seg_path = write_records(
        [{"user_id": u, "segment_id": s} for u, s in segments.items()], out / "segments.jsonl"
    )
    t_build = time.perf_counter() - t0

    from eval.report import main as eval_main

    t0 = time.perf_counter()
    cmd = [
        "--ads",
        str(Path(args.data) / "amazon_office_products"),
        "--out",
        str(out / "report"),
        "--segments",
        f"copy-with-brand={seg_path}",
        "--segments",
        f"point-match-k8={seg_path}",
        "--calls",
        f"copy-with-brand={len(ad_ids)}",
        "--judge",
        "similarity",
        "--channels",
        "title",
        "headline",
        "--max-pairs",
        str(args.max_pairs),
        "--seed",
        str(args.seed),
        "--cache-dir",
        str(out / "cache"),
    ]
    for name, path in files.items():
        cmd += ["--systems", f"{name}={path}"]
    rc = eval_main(cmd)
    t_eval = time.perf_counter() - t0
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(
        f"users {len(user_ids)} x ads {len(ad_ids)} = {len(user_ids) * len(ad_ids)} pairs; "
        f"load {t_load:.1f}s, build baselines {t_build:.1f}s, eval {t_eval:.1f}s"
    )
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
