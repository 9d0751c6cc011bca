"""Fluency of real vs broken titles under a stock reference LM, the gate's pass rates, and its cost.

    python benchmarks/fluency.py                       # bundled sample, gemma-270m, 300 ads
    python benchmarks/fluency.py --reference runs/demo/artifacts/lm --ads 100
    python benchmarks/fluency.py --served runs/quickstart/generate/creatives.jsonl   # + the titles a run served

For each ad of the sample: its real title, the same words shuffled, and a fragment-stitched title (two to
four short runs of the ad's own words, from its title and selling points, joined by stray ": " and " - ",
the shape of the broken titles the micro generator writes). Prints the mean NLL per token of each kind and
its excess over the catalog's unigram NLL (the gate's default statistic) with 95% bootstrap intervals, the
share the gate passes at several percentile thresholds of either statistic (the threshold of the
in-sample row is the percentile of all real titles; the held-out column calibrates on one half of the
ads and measures the other half), examples on both sides of the chosen threshold, and the scoring time per
100 titles with the machine's load average. With ``--served``, also the generated titles a ``generate`` run
served (``source`` personalized and different from the ad's title, each distinct title once) under the gate
the run would use (excess NLL at p95 of all the catalog's titles): their pass rate and the ones it rejects.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np

from creator.io import load_catalog
from creator.modeling.fluency import FluencyScorer, UnigramLM, percentile_threshold
from eval.metrics import bootstrap_ci

PERCENTILES = (80.0, 90.0, 95.0, 98.0, 99.0)


def shuffle_words(title: str, rng: random.Random) -> str:
    words = title.split()
    out = words[:]
    for _ in range(10):
        rng.shuffle(out)
        if out != words:
            break
    return " ".join(out)


def stitch_fragments(title: str, points: list[str], rng: random.Random) -> str:
    """2-4 runs of 1-3 consecutive words from the ad's title and selling points, joined by stray separators."""
    sources = [s.split() for s in [title, *points] if s.split()]
    parts = []
    for _ in range(rng.randint(2, 4)):
        words = rng.choice(sources)
        n = rng.randint(1, min(3, len(words)))
        start = rng.randrange(len(words) - n + 1)
        parts.append(" ".join(words[start:start + n]).strip(",.;:"))
    out = parts[0]
    for p in parts[1:]:
        out += rng.choice([": ", ": ", " - "]) + p
    return out


def ci(values: np.ndarray) -> str:
    c = bootstrap_ci(values, n_resamples=1000, seed=0)
    return f"{c.estimate:.2f} [{c.low:.2f}, {c.high:.2f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="examples/office_products_sample")
    p.add_argument("--reference", default="gemma-270m", help="a named base or an LM folder")
    p.add_argument("--ads", type=int, default=300, help="score the first N ads")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save", help="write every title's scores to this JSON file")
    p.add_argument("--served", help="a generate run's creatives.jsonl: also score the generated titles it served")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    ads = list(load_catalog(args.data, "auto").ads.values())[: args.ads]
    rng = random.Random(0)
    kinds = {"real": [a.title for a in ads],
             "shuffled": [shuffle_words(a.title, rng) for a in ads],
             "stitched": [stitch_fragments(a.title, a.selling_points, rng) for a in ads]}
    t0 = time.perf_counter()
    scorer = FluencyScorer.from_pretrained(args.reference)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nll = {k: scorer.score(v) for k, v in kinds.items()}
    n_scored = len(scorer.cache)
    per100 = (time.perf_counter() - t0) / n_scored * 100
    load = os.getloadavg()
    catalog = list(load_catalog(args.data, "auto").ads.values())
    unigram = UnigramLM(scorer.tokenizer, [x for a in catalog for x in (a.title, *a.selling_points, a.description)])
    unigram.max_tokens = scorer.max_tokens
    excess = {k: nll[k] - unigram.mean_nll(v) for k, v in kinds.items()}
    if args.save:
        import json

        with open(args.save, "w") as f:
            json.dump({k: [{"title": t, "nll": float(n), "excess_nll": float(e)}
                           for t, n, e in zip(kinds[k], nll[k], excess[k], strict=True)] for k in kinds}, f)

    print(f"reference LM: {scorer.name}; {len(ads)} ads of {args.data}; torch threads {args.threads}")
    print(f"load {load_s:.1f} s; scoring {per100:.1f} s per 100 titles ({n_scored} distinct titles); "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores\n")
    print("| titles | mean NLL/token [95% CI] | real < this title | excess NLL/token [95% CI] | "
          "real < this title |")
    print("|---|---|---|---|---|")
    for k in kinds:
        beats = "-" if k == "real" else f"{100 * np.mean(nll['real'] < nll[k]):.1f}%"
        beats_x = "-" if k == "real" else f"{100 * np.mean(excess['real'] < excess[k]):.1f}%"
        print(f"| {k} | {ci(nll[k])} | {beats} | {ci(excess[k])} | {beats_x} |")

    half = np.arange(len(ads)) % 2 == 0
    for stat, v in (("NLL", nll), ("excess NLL (--fluency-normalize unigram)", excess)):
        print(f"\ngate on {stat}")
        print("| percentile | threshold | real pass % | real pass %, held-out half | shuffled pass % | "
              "stitched pass % |")
        print("|---|---|---|---|---|---|")
        for pct in PERCENTILES:
            thr = percentile_threshold(v["real"], pct)
            held = np.mean(v["real"][~half] <= percentile_threshold(v["real"][half], pct))
            print(f"| p{pct:g} | {thr:.2f} | {100 * np.mean(v['real'] <= thr):.1f} | {100 * held:.1f} | "
                  f"{100 * np.mean(v['shuffled'] <= thr):.1f} | {100 * np.mean(v['stitched'] <= thr):.1f} |")

    for stat, v in (("NLL", nll), ("excess NLL", excess)):
        examples(stat, v, kinds)
    if args.served:
        served(args.served, scorer, unigram, catalog)
    return 0


def served(path: str, scorer: FluencyScorer, unigram: UnigramLM, catalog: list) -> None:
    """The gate's verdict on the generated titles a run served, against the catalog's own titles."""
    import json

    titles = {a.ad_id: a.title for a in catalog}
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    generated = sorted({r["title"] for r in rows if r.get("source") == "personalized"
                        and r["title"] != titles.get(r["ad_id"])})
    real = [a.title for a in catalog]
    real_x = scorer.score(real) - unigram.mean_nll(real)
    thr = percentile_threshold(real_x, 95)
    gen_nll = scorer.score(generated)
    gen_x = gen_nll - unigram.mean_nll(generated)
    ok = (gen_x <= thr).astype(float)
    print(f"\nserved titles of {path}: {len(generated)} distinct generated titles "
          f"(of {len(rows)} served rows); gate: excess NLL <= {thr:.2f} (p95 of {len(real)} catalog titles)")
    print("| titles | mean NLL/token [95% CI] | excess NLL/token [95% CI] | gate pass % [95% CI] |")
    print("|---|---|---|---|")
    print(f"| catalog | {ci(scorer.score(real))} | {ci(real_x)} | {ci(100 * (real_x <= thr).astype(float))} |")
    print(f"| served, generated | {ci(gen_nll)} | {ci(gen_x)} | {ci(100 * ok)} |")
    order = np.argsort(-gen_x)
    print("served titles the gate rejects (highest first)")
    for i in [i for i in order if gen_x[i] > thr][:8]:
        print(f"  {gen_x[i]:.2f}  REJECT  {generated[i]}")
    print("served titles just under it")
    for i in [i for i in order if gen_x[i] <= thr][:4]:
        print(f"  {gen_x[i]:.2f}  pass    {generated[i]}")


def examples(stat: str, nll: dict[str, np.ndarray], kinds: dict[str, list[str]]) -> None:
    n = len(kinds["real"])
    thr = percentile_threshold(nll["real"], 95)
    print(f"\ngate on {stat} at p95 = {thr:.2f}: the real titles it rejects (highest first)")
    for i in np.argsort(-nll["real"])[:8]:
        print(f"  {nll['real'][i]:.2f}  {'REJECT' if nll['real'][i] > thr else 'pass  '}  {kinds['real'][i]}")
    print("real titles just under it")
    under = [i for i in np.argsort(-nll["real"]) if nll["real"][i] <= thr][:3]
    for i in under:
        print(f"  {nll['real'][i]:.2f}  pass    {kinds['real'][i]}")
    for k in ("shuffled", "stitched"):
        passed = [i for i in np.argsort(nll[k]) if nll[k][i] <= thr]
        print(f"{k} titles the gate passes ({len(passed)}), lowest NLL first")
        for i in passed[:4]:
            print(f"  {nll[k][i]:.2f}  pass    {kinds[k][i]}")
        print(f"{k} titles it rejects, examples")
        for i in [i for i in range(n) if nll[k][i] > thr][:3]:
            print(f"  {nll[k][i]:.2f}  REJECT  {kinds[k][i]}")


if __name__ == "__main__":
    raise SystemExit(main())
