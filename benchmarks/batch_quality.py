"""Judged quality of segment generation vs per-user generation, with the trained tiny artefacts.

Run through ``benchmarks/batch_generation.py``:

    python -m benchmarks.batch_generation --only quality,sweep --artifacts runs/office/artifacts \\
        --data ../shared/data/amazon_office_products --users 200 --ads 20 --threads 1

On a random subsample of real users and ads (seeded), the same trained parts (user model + match head,
generator, guard, judge; the demo's artefact layout) run the same pipeline twice:

- **per-user**: every user its own segment (``PipelineConfig(per_user=True)``): one generator request
  per (user, ad), the judge reranks each user's candidates against that user;
- **segments**: k-means into K segments, match pruning, one request per kept (segment, ad); the
  judge reranks against the segment's medoid and the title is served to every member.

Every served title (pruned pairs and guard fallbacks serve the original title) is then scored by the
judge against the user it is served to. Quality = mean judge score (click probability) of the served
titles; Adv vs original = (Good - Bad) / N with the judge's 0.01 margin (``eval.metrics.pairwise``).

The sweep runs the segment pipeline once per K without a threshold; a threshold T then serves the
original title on every pair whose match score is below T. That is exactly what the pipeline does
with ``match_threshold=T`` (the generator's output for a kept pair depends only on its segment, ad
and seed, never on which other pairs are kept), so the calls are the kept pairs and nothing is
generated twice. Thresholds default to quantiles of the (segment, ad) match scores.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from creator.backends.base import SamplingConfig
from creator.pipeline.catalog import CatalogResult, PipelineConfig, generate_for_catalog
from creator.records.types import Ad, User


def subsample(data: Path, n_users: int, n_ads: int, seed: int = 0) -> tuple[list[User], list[Ad]]:
    """``n_users`` users with a history and ``n_ads`` ads drawn at random (seeded), in catalog order."""
    from creator.io import load_catalog

    cat = load_catalog(data, "auto")
    users = [u for u in cat.users.values() if u.history]
    ads = list(cat.ads.values())
    if n_users > len(users) or n_ads > len(ads):
        raise ValueError(f"asked for {n_users} users and {n_ads} ads, the catalog {data} has {len(users)} users "
                         f"with a history and {len(ads)} ads; pass smaller --users/--ads")
    rng = np.random.default_rng(seed)
    return ([users[i] for i in sorted(rng.choice(len(users), n_users, replace=False))],
            [ads[i] for i in sorted(rng.choice(len(ads), n_ads, replace=False))])


def load_parts(artifacts: Path, ads: list[Ad], batch_size: int = 16) -> tuple[Any, Any]:
    """The trained model bundle in ``artifacts`` (``creator.bundle``; a ``DataError`` names a missing part and
    the command that trains it): pipeline components under the default guard, and the judge they share."""
    from creator.backends.hf import HFBackend
    from creator.bundle import ModelBundle
    from creator.guard.check import Guard, GuardConfig, known_brands_from_ads

    models = ModelBundle.read(artifacts).load(cache_dir=artifacts / "embeddings")
    guard = Guard(GuardConfig(), known_brands=known_brands_from_ads(ads))
    components = models.components(guard, HFBackend.from_generator(models.generator, batch_size=batch_size))
    return components, components.judge


def served(result: CatalogResult, users: list[User], ads: list[Ad]) -> list[str]:
    """The title each (user, ad) pair is served, user-major: users[0] x ads, users[1] x ads, ..."""
    by_key = {(c.segment_id, c.ad_id): c.title for c in result.creatives}
    return [by_key[(result.user_segments[u.user_id], a.ad_id)] for u in users for a in ads]


def judged(judge: Any, users: list[User], ads: list[Ad], titles: list[str], base: np.ndarray) -> dict[str, Any]:
    """Mean judge score of the served titles and Adv vs the original titles (scores ``base``)."""
    from eval.metrics import bootstrap_ci, pairwise

    flat_users = [u for u in users for _ in ads]
    flat_ads = [a for _ in users for a in ads]
    scores = np.asarray(judge.score(flat_users, titles, flat_ads), dtype=float)
    pw = pairwise(judge, flat_users, titles, [a.title for a in flat_ads], flat_ads, scores=(scores, base))
    ci = bootstrap_ci(scores, seed=0)
    return {"judge_mean": round(float(scores.mean()), 5), "judge_ci": [round(ci.low, 5), round(ci.high, 5)],
            "adv_vs_original": round(float(pw.adv), 4),
            "changed": round(float(np.mean([t != a.title for t, a in zip(titles, flat_ads, strict=True)])), 3),
            "scores": scores}


def run_one(users: list[User], ads: list[Ad], parts: Any, config: PipelineConfig,
            sampling: SamplingConfig) -> tuple[CatalogResult, float]:
    t0 = time.perf_counter()
    result = generate_for_catalog(ads, users, parts, config, sampling, progress=True)
    return result, time.perf_counter() - t0


def bench_quality(users: list[User], ads: list[Ad], parts: Any, judge: Any, sampling: SamplingConfig, *,
                  clusters: int, top_m: int | None, threshold: float | None) -> dict[str, Any]:
    """Per-user vs segments on the same users, ads, parts and sampling; the loss of judged quality."""
    from eval.metrics import bootstrap_ci

    flat_ads = [a for _ in users for a in ads]
    base = np.asarray(judge.score([u for u in users for _ in ads], [a.title for a in flat_ads], flat_ads),
                      dtype=float)
    rows = {"original": {"calls": 0, "seconds": 0.0, "judge_mean": round(float(base.mean()), 5),
                         "judge_ci": None, "adv_vs_original": 0.0, "changed": 0.0, "personalized": 0,
                         "fallbacks": 0}}
    runs = {"per-user": PipelineConfig(per_user=True),
            f"segments K={clusters}": PipelineConfig(clusters=clusters, top_m=top_m, match_threshold=threshold)}
    scores = {}
    for name, config in runs.items():
        result, seconds = run_one(users, ads, parts, config, sampling)
        j = judged(judge, users, ads, served(result, users, ads), base)
        scores[name] = j.pop("scores")
        rows[name] = {"calls": result.summary.generator_requests, "seconds": round(seconds, 1), **j,
                      "personalized": result.summary.personalized, "fallbacks": result.summary.fallbacks}
    seg = f"segments K={clusters}"
    per, cl, orig = rows["per-user"]["judge_mean"], rows[seg]["judge_mean"], rows["original"]["judge_mean"]
    diff = bootstrap_ci(scores[seg] - scores["per-user"], seed=0)
    return {"users": len(users), "ads": len(ads), "rows": rows,
            "loss_pct": round(100 * (per - cl) / per, 2),
            "loss_ci_pct": [round(-100 * diff.high / per, 2), round(-100 * diff.low / per, 2)],
            # share of per-user's gain over the original that segments keep; undefined without a gain
            "lift_kept": round((cl - orig) / (per - orig), 3) if per > orig else None,
            "calls_reduction": round(rows["per-user"]["calls"] / max(rows[seg]["calls"], 1), 1),
            "time_reduction": round(rows["per-user"]["seconds"] / max(rows[seg]["seconds"], 1e-9), 1)}


def served_at(result: CatalogResult, users: list[User], ads: list[Ad],
              threshold: float | None) -> tuple[list[str], int]:
    """What a run with ``match_threshold=threshold`` serves, from a run without one: (user-major titles, calls).

    A pair below the threshold serves the original title, as the pipeline does for a pruned pair."""
    col = {a.ad_id: m for m, a in enumerate(ads)}
    generated = {(c.segment_id, c.ad_id): c.title for c in result.creatives}
    kept = result.keep if threshold is None else result.keep & (result.scores >= threshold)
    titles = [generated[(s, a.ad_id)] if kept[s, col[a.ad_id]] else a.title
              for s in (result.user_segments[u.user_id] for u in users) for a in ads]
    live = np.unique(list(result.user_segments.values()))
    return titles, int(kept[live].sum())


def bench_judged_sweep(users: list[User], ads: list[Ad], parts: Any, judge: Any, sampling: SamplingConfig,
                       ks: tuple[int, ...], quantiles: tuple[float, ...]) -> list[dict[str, Any]]:
    """Calls vs judged quality for every K and match threshold (see the module docstring)."""
    flat_ads = [a for _ in users for a in ads]
    base = np.asarray(judge.score([u for u in users for _ in ads], [a.title for a in flat_ads], flat_ads),
                      dtype=float)
    rows = []
    for k in ks:
        result, seconds = run_one(users, ads, parts, PipelineConfig(clusters=k), sampling)
        live = result.scores[np.unique(list(result.user_segments.values()))]
        for q in (None, *quantiles):
            t = None if q is None else round(float(np.quantile(live, q)), 4)
            titles, calls = served_at(result, users, ads, t)
            j = judged(judge, users, ads, titles, base)
            j.pop("scores")
            rows.append({"K": k, "quantile": q, "threshold": t, "calls": calls,
                         "generate_s_unpruned": round(seconds, 1), **j})
    return rows


def plot_judged_sweep(rows: list[dict[str, Any]], quality: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k in sorted({r["K"] for r in rows}):
        pts = sorted((r for r in rows if r["K"] == k), key=lambda r: r["calls"])
        ax.plot([r["calls"] for r in pts], [r["judge_mean"] for r in pts], marker="o", label=f"K={k}")
        for r in pts:
            ax.annotate("all" if r["quantile"] is None else f"q{int(100 * r['quantile'])}",
                        (r["calls"], r["judge_mean"]), fontsize=7)
    if quality:
        per, orig = quality["rows"]["per-user"], quality["rows"]["original"]
        ax.scatter([per["calls"]], [per["judge_mean"]], marker="*", s=120, color="black", label="per-user", zorder=3)
        ax.axhline(orig["judge_mean"], color="grey", linestyle="--", linewidth=1, label="original title")
    ax.set_xscale("log")
    ax.set_xlabel("generator calls (kept pairs)")
    ax.set_ylabel("mean judge score of served titles")
    ax.set_title("K x match-threshold sweep, judged (real Office_Products users)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
