"""Batch generation: generator calls and wall time vs per-user generation, scaling with users, k-means speed,
a K x threshold sweep (calls vs a quality proxy), and, with trained artefacts, judged quality vs per-user
generation and a judged K x threshold sweep. Prints markdown tables; writes JSON + PNG plots.

    python -m benchmarks.batch_generation --out runs/bench_batchgen                  # all synthetic sections
    python -m benchmarks.batch_generation --only kmeans --threads 2                  # 1M x 384 -> 1024
    python -m benchmarks.batch_generation --only proxy-sweep --data ../shared/data/amazon_office_products
    python -m benchmarks.batch_generation --only quality,sweep --artifacts runs/office/artifacts \
        --data ../shared/data/amazon_office_products --users 200 --ads 20 --threads 1

``quality`` and ``sweep`` (``benchmarks/batch_quality.py``) use the trained parts in ``--artifacts``
(the demo's layout, e.g. from ``hllm-creator quickstart --out DIR --no-serve``) on real users.

The generator is a tiny random Llama (hidden 64, 2 layers) built in-process: what is measured is the
pipeline's cost structure (calls, batching, clustering, mapping back), not title quality. User vectors
for the scale runs are synthetic (a Gaussian mixture); the sweep uses real Office_Products users when
``--data`` is given, with a mean-of-MiniLM-history user vector standing in for the trained user encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from creator.backends.base import GenerationRequest, SamplingConfig
from creator.backends.hf import HFBackend
from creator.pipeline.catalog import Components, PipelineConfig, generate_for_catalog, select_pairs
from creator.records.types import Ad, GuardVerdict, HistoryItem, User
from creator.segments.clustering import cluster_users

HIDDEN, D_USER, SOFT = 64, 32, 2


# -- synthetic parts --------------------------------------------------------------------------------
def tiny_generator(seed: int = 0):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(250)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *words])},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                        eos_token="[EOS]")
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         pad_token_id=0, eos_token_id=2, bos_token_id=None)).eval()
    proj = torch.randn(D_USER, SOFT * HIDDEN) * 0.05

    def prompt_embeds(ad: Ad, user_vec: np.ndarray) -> torch.Tensor:
        ids = torch.tensor(tokenizer(ad.title, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            soft = (torch.as_tensor(user_vec, dtype=torch.float32) @ proj).view(SOFT, HIDDEN)
            return torch.cat([soft, model.get_input_embeddings()(ids)])  # (SOFT + T, H)

    return model, tokenizer, prompt_embeds


class VectorUserModel:
    """Precomputed user vectors (synthetic or MiniLM-based) looked up by user id."""

    def __init__(self, vecs: dict[str, np.ndarray], ad_vecs: dict[str, np.ndarray]) -> None:
        self.vecs, self.ad_vecs = vecs, ad_vecs

    def embed_users(self, users, *, batch_size=256, progress=False):
        return np.stack([self.vecs[u.user_id] for u in users])

    def embed_items(self, texts):
        return np.stack([self.ad_vecs[t] for t in texts])

    def match(self, user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
        return logistic_match(user_vecs, ad_vecs)


def logistic_match(u: np.ndarray, a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-4 * (u @ a.T)))


class PromptGenerator:
    """The pipeline's generator part around a ``prompt_embeds`` function; open decoding (no grounding)."""

    def __init__(self, prompt_embeds) -> None:
        self.prompt_embeds = prompt_embeds

    def grounding(self, ad, *, max_chars=None, wide=False):
        return None


class LengthGuard:
    def check(self, title, ad, *, original_title=None):
        return GuardVerdict()


def synthetic_world(n_users: int, n_ads: int, seed: int = 0, n_tastes: int = 50):
    rng = np.random.default_rng(seed)
    tastes = rng.normal(size=(n_tastes, D_USER))
    tastes /= np.linalg.norm(tastes, axis=1, keepdims=True)
    vecs = tastes[rng.integers(n_tastes, size=n_users)] + rng.normal(size=(n_users, D_USER)) * 0.3
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    ad_vecs = rng.normal(size=(n_ads, D_USER)).astype(np.float32) / np.sqrt(D_USER)
    ads = [Ad(ad_id=f"ad{i}", title=" ".join(f"w{j}" for j in rng.integers(250, size=6)))
           for i in range(n_ads)]
    users = [User(f"u{i}", [HistoryItem("h", "x")]) for i in range(n_users)]
    model = VectorUserModel({u.user_id: v for u, v in zip(users, vecs, strict=True)},
                            {a.title: v for a, v in zip(ads, ad_vecs, strict=True)})
    return users, ads, model


# -- sections ---------------------------------------------------------------------------------------
def bench_calls(backend, prompt_embeds, sampling, n_users=100, n_ads=10, k=8, top_m=5):
    """Segment pipeline vs per-user generation, side by side on the same users, ads and generator."""
    users, ads, um = synthetic_world(n_users, n_ads)
    parts = Components(um, PromptGenerator(prompt_embeds), backend, LengthGuard())
    t0 = time.perf_counter()
    res = generate_for_catalog(ads, users, parts, PipelineConfig(clusters=k, top_m=top_m), sampling)
    t_seg = time.perf_counter() - t0
    t0 = time.perf_counter()
    vecs = um.embed_users(users)  # the same user vectors, one request per (user, ad)
    requests = [GenerationRequest(f"{u.user_id}|{a.ad_id}", prompt_embeds(a, v))
                for u, v in zip(users, vecs, strict=True) for a in ads]
    backend.generate(requests, sampling)
    t_user = time.perf_counter() - t0
    return {"users": n_users, "ads": n_ads, "K": k, "top_m": top_m,
            "segment_calls": res.summary.generator_requests, "per_user_calls": len(requests),
            "segment_s": round(t_seg, 2), "per_user_s": round(t_user, 2),
            "per_user_s_per_call": round(t_user / len(requests), 4)}


def plan_calls(n_users: int, n_ads: int, k: int, top_m: int | None, threshold: float | None) -> dict:
    """Calls the segment pipeline would make at scale (clustering + match + pruning run for real)."""
    users, ads, um = synthetic_world(n_users, n_ads)
    t0 = time.perf_counter()
    seg = cluster_users(um.embed_users(users), k, seed=0)
    keep = select_pairs(logistic_match(seg.representatives, um.embed_items([a.title for a in ads])),
                        threshold=threshold, top_m=top_m)
    return {"users": n_users, "ads": n_ads, "K": k, "top_m": top_m, "threshold": threshold,
            "segment_calls": int(keep[seg.sizes > 0].sum()), "per_user_calls": n_users * n_ads,
            "plan_s": round(time.perf_counter() - t0, 2)}


def bench_scale(backend, prompt_embeds, sampling, k=64, n_ads=100, top_m=5, repeats=3):
    """Whole pipeline at 10k and 100k users, fixed K and A; after a warm-up, best of ``repeats`` each,
    interleaved so both sizes see the same neighbours on a shared box."""
    worlds = {n: synthetic_world(n, n_ads) for n in (1_000, 10_000, 100_000)}
    out: dict = {}
    for n in (1_000, *[m for _ in range(repeats) for m in (10_000, 100_000)]):  # 1,000 = warm-up
        users, ads, um = worlds[n]
        parts = Components(um, PromptGenerator(prompt_embeds), backend, LengthGuard())
        t0, c0 = time.perf_counter(), time.process_time()
        res = generate_for_catalog(ads, users, parts, PipelineConfig(clusters=k, top_m=top_m), sampling)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        if n != 1_000 and seconds < out.get(n, {}).get("seconds", float("inf")):
            out[n] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                      "non_generate_s": round(seconds - res.summary.seconds["generate"], 2),
                      "calls": res.summary.generator_requests,
                      "stages": res.summary.seconds}
    out["ratio"] = round(out[100_000]["seconds"] / out[10_000]["seconds"], 3)
    out["cpu_ratio"] = round(out[100_000]["cpu_seconds"] / out[10_000]["cpu_seconds"], 3)
    return out


def bench_kmeans(n=1_000_000, d=384, k=1024, threads=2):
    import faiss

    faiss.omp_set_num_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4096, d)).astype(np.float32)
    vecs = centers[rng.integers(4096, size=n)]
    vecs += rng.normal(size=(n, d)).astype(np.float32) * 0.5
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    t0, c0 = time.perf_counter(), time.process_time()
    seg = cluster_users(vecs, k, seed=0)
    # CPU seconds as well: on a shared box the wall time mostly measures the neighbours
    return {"n": n, "d": d, "k": k, "threads": threads, "seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(time.process_time() - c0, 1), "load_avg": round(os.getloadavg()[0], 1),
            "empty_segments": int((seg.sizes == 0).sum()), "largest_segment": int(seg.sizes.max())}


def real_world(data: Path, cache: Path):
    """Office_Products users; user vector = mean MiniLM vector of history titles (a stand-in encoder)."""
    from creator.io import load_catalog
    from creator.modeling.item_encoder import SentenceItemEncoder

    cat = load_catalog(data, "amazon2018")
    users = [u for u in cat.users.values() if u.history]
    ads = list(cat.ads.values())
    enc = SentenceItemEncoder(cache_dir=cache)
    titles = sorted({a.title for a in ads} | {h.title for u in users for h in u.history})
    emb = dict(zip(titles, enc.encode(titles), strict=True))
    uvecs = np.stack([np.mean([emb[h.title] for h in u.history], axis=0) for u in users]).astype(np.float32)
    uvecs /= np.linalg.norm(uvecs, axis=1, keepdims=True)
    avecs = np.stack([emb[a.title] for a in ads]).astype(np.float32)
    return users, ads, uvecs, avecs


def bench_sweep(uvecs, avecs, ks=(16, 64, 256), thresholds=(None, 0.3, 0.4, 0.5), top_m=None, own_top=10):
    """Calls vs quality proxies. Match = cosine(segment vector, ad vector). Proxies: recall of each user's
    own top-10 ads (by cosine with the user's own vector) among the pairs kept for their segment, and
    mean cosine between a user and the segment vector their titles are written for."""
    own = np.argsort(-(uvecs @ avecs.T), axis=1)[:, :own_top]  # (N, 10)
    rows = []
    for k in ks:
        seg = cluster_users(uvecs, k, seed=0)
        scores = seg.representatives @ avecs.T
        fidelity = float(np.mean(np.sum(uvecs * seg.representatives[seg.labels], axis=1)
                                 / np.linalg.norm(seg.representatives[seg.labels], axis=1)))
        for t in thresholds:
            keep = select_pairs(scores, threshold=t, top_m=top_m)
            recall = float(np.mean(np.take_along_axis(keep[seg.labels], own, axis=1)))
            rows.append({"K": k, "threshold": t, "calls": int(keep.sum()),
                         "per_user_calls": uvecs.shape[0] * avecs.shape[0],
                         "own_top10_recall": round(recall, 3), "user_segment_cos": round(fidelity, 3)})
    return rows


def plot_sweep(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k in sorted({r["K"] for r in rows}):
        pts = [r for r in rows if r["K"] == k]
        ax.plot([r["calls"] for r in pts], [r["own_top10_recall"] for r in pts], marker="o", label=f"K={k}")
        for r in pts:
            label = "none" if r["threshold"] is None else f"{r['threshold']}"
            ax.annotate(label, (r["calls"], r["own_top10_recall"]), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("generator calls (kept segment x ad pairs)")
    ax.set_ylabel("recall of each user's own top-10 ads")
    ax.set_title("K x match-threshold sweep (Office_Products users)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_judged(args: argparse.Namespace, only: set[str], out: Path, results: dict) -> None:
    """Per-user vs segments (quality) and the judged K x threshold sweep on real users."""
    from benchmarks import batch_quality as bq

    if not args.artifacts or not args.data:
        raise SystemExit("--only quality/sweep need --artifacts DIR (trained parts) and --data (real users)")
    users, ads = bq.subsample(Path(args.data), args.users, args.ads)
    parts, judge = bq.load_parts(Path(args.artifacts), ads)
    sampling = SamplingConfig(n=args.candidates, seed=0)
    print(f"\njudged on {len(users)} real users x {len(ads)} ads, {args.candidates} candidates per request, "
          f"artefacts {args.artifacts}")
    if "quality" in only:
        q = bq.bench_quality(users, ads, parts, judge, sampling, clusters=args.clusters,
                             top_m=args.top_m or None, threshold=None)
        results["quality"] = q
        print(f"\n## judged quality: segments vs per-user (load average {os.getloadavg()[0]:.1f})\n"
              + table([{"system": n, **r} for n, r in q["rows"].items()])
              + f"\nloss of judged quality: {q['loss_pct']}% (95% CI {q['loss_ci_pct']}); share of per-user's "
              f"lift over the original kept: {q['lift_kept']}; calls {q['calls_reduction']}x fewer, "
              f"wall time {q['time_reduction']}x shorter")
    if "sweep" in only:
        ks = tuple(int(k) for k in args.sweep_k.split(","))
        qs = tuple(float(x) for x in args.sweep_quantiles.split(","))
        rows = bq.bench_judged_sweep(users, ads, parts, judge, sampling, ks, qs)
        results["sweep"] = rows
        for path in [out / "judged_sweep.png", *([Path(args.plot)] if args.plot else [])]:
            bq.plot_judged_sweep(rows, results.get("quality"), path)
        print(f"\n## judged K x threshold sweep (load average {os.getloadavg()[0]:.1f})\n" + table(rows)
              + f"\nplot: {out / 'judged_sweep.png'}")


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench_batchgen")
    p.add_argument("--only", default="calls,scale,kmeans,proxy-sweep",
                   help="comma list of: calls, scale, kmeans, proxy-sweep, quality, sweep")
    p.add_argument("--data", help="Office_Products folder (proxy-sweep: synthetic users otherwise; "
                                  "quality and sweep need it)")
    q = p.add_argument_group("judged quality (quality, sweep)")
    q.add_argument("--artifacts", help="a trained model bundle (creator/bundle.py), e.g. quickstart's OUT/artifacts")
    q.add_argument("--users", type=int, default=200, help="real users in the subsample")
    q.add_argument("--ads", type=int, default=20, help="ads in the subsample")
    q.add_argument("--clusters", type=int, default=16, help="quality: K of the segment run")
    q.add_argument("--top-m", type=int, default=10, help="quality: ads kept per segment (0 = no top-m)")
    q.add_argument("--sweep-k", default="4,8,16,32", help="sweep: comma list of K")
    q.add_argument("--sweep-quantiles", default="0.5,0.8",
                   help="sweep: thresholds at these quantiles of the (segment, ad) match scores")
    q.add_argument("--candidates", type=int, default=4, help="titles sampled per request")
    q.add_argument("--plot", help="also save the judged sweep plot here (e.g. docs/img/...)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--kmeans-n", type=int, default=1_000_000)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus visible, "
          f"torch threads {args.threads}, load average {os.getloadavg()[0]:.1f}")
    results: dict = {}
    if only & {"calls", "scale"}:
        model, tok, prompt_embeds = tiny_generator()
        backend = HFBackend(model, tok, batch_size=32)
        sampling = SamplingConfig(n=2, max_new_tokens=8, seed=0)
    if "calls" in only:
        measured = bench_calls(backend, prompt_embeds, sampling)
        at_scale = plan_calls(100_000, 100, k=256, top_m=20, threshold=None)
        at_scale["calls_reduction"] = round(at_scale["per_user_calls"] / at_scale["segment_calls"], 1)
        per_user_s = measured["per_user_s_per_call"] * at_scale["per_user_calls"]
        at_scale["per_user_hours_extrapolated"] = round(per_user_s / 3600, 1)
        results["calls"] = {"measured": measured, "at_scale": at_scale}
        print("\n## calls and wall time vs per-user (measured side by side)\n" + table([measured]))
        print("\n## calls at U=100,000 x A=100 (plan run for real, per-user time extrapolated)\n"
              + table([at_scale]))
    if "scale" in only:
        results["scale"] = bench_scale(backend, prompt_embeds, sampling)
        print("\n## t(100k users) / t(10k users), K=64, A=100, top-m 5\n"
              + table([{"users": n, **{k: v for k, v in r.items() if k != "stages"}}
                       for n, r in results["scale"].items() if isinstance(r, dict)])
              + f"\nratio (wall): {results['scale']['ratio']}, ratio (CPU): {results['scale']['cpu_ratio']}")
    if "kmeans" in only:
        results["kmeans"] = bench_kmeans(n=args.kmeans_n, threads=args.threads)
        print("\n## k-means\n" + table([results["kmeans"]]))
    if only & {"quality", "sweep"}:
        run_judged(args, only, out, results)
    if "proxy-sweep" in only:
        if args.data:
            _, _, uvecs, avecs = real_world(Path(args.data), out / "emb-cache")
        else:
            users, ads, um = synthetic_world(3000, 500)
            uvecs, avecs = um.embed_users(users), um.embed_items([a.title for a in ads])
        results["proxy_sweep"] = bench_sweep(uvecs, avecs)
        plot_sweep(results["proxy_sweep"], out / "sweep.png")
        print(f"\n## K x threshold sweep, quality proxies ({'Office_Products' if args.data else 'synthetic'})\n"
              + table(results["proxy_sweep"]) + f"\nplot: {out / 'sweep.png'}")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
