"""Quality of a finished quickstart run, in one table: fluency, the gate, the judge before and after its fix,
catalog coverage, personalization and factual errors, each on held-out users with a 95% bootstrap interval.

    python benchmarks/quality.py                              # runs/quickstart (make demo SERVE=0 first)
    python benchmarks/quality.py --run runs/quickstart --out runs/bench_quality --fluency gemma-270m

What it does, resumable (a finished step is read back, not redone):

1. The **held-out users** are the user model's test split (the judge holds out the same users): no model of the
   run was trained on their histories. The run's served titles (``generate/creatives.jsonl``) are expanded to
   these users' segments x every ad, and ``--pairs`` (user, ad) pairs are sampled from them.
2. ``hllm-creator eval`` on those pairs with the run's judge (trained on corrupted titles, as the demo trains
   it) and the fluency reference LM (``--fluency``; the stock Gemma 3 270M when installed): NLL per token of
   the served and the original titles, the share the fluency gate passes, judge Adv, history-similarity
   lift, own-vs-swapped fit and factual errors. Beside them the **simplest baseline**, ``first point``: where
   the run served a personalized title, the ad's title with its *first* selling point's hook appended (the
   same for every user: copy without personalization, ``creator.records.rewrite.compose``); elsewhere the
   original. Personalization has to beat this, not only the original.
3. The **judge before the fix**: the demo's judge trained again with ``corruption_negatives 0`` (same data,
   user model and options otherwise; ``OUT/judge_before``), and its Adv of the same served titles over the
   originals.
4. **Coverage** and **calls** from the run's ``generate/summary.json``.
5. **The user vector's effect** (``--ablation-pairs``): for held-out (user, ad) pairs, the generator's greedy
   title with the user's own vector and with a zero vector; the judge's Adv of own over zeroed (per pair +1 /
   0 / -1 at the report's margin, bootstrap interval), the share of titles the vector changes, and the history
   fit (MiniLM cosine to the user's history mean) of own minus zeroed.

Prints a markdown table and writes it with every number to ``OUT/quality.md`` and ``OUT/quality.json``, with
the machine (cores, load average) and the reference LM. The numbers describe the run you pass: quote them with
the run's commit and settings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # python benchmarks/quality.py from the repository root
    sys.path.insert(0, str(REPO))

SAMPLE = REPO / "examples" / "office_products_sample"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/quickstart", help="a finished quickstart run (OUT of make demo)")
    p.add_argument("--data", default=str(SAMPLE), help="the catalog the run was trained and served on")
    p.add_argument("--format", default="auto")
    p.add_argument("--out", default="runs/bench_quality")
    p.add_argument("--pairs", type=int, default=2000, help="(held-out user, ad) pairs sampled")
    p.add_argument("--fluency", default="auto", help="reference LM: auto, gemma-270m, a folder, or off")
    p.add_argument("--no-before", action="store_true", help="skip training the judge without corruptions")
    p.add_argument("--ablation-pairs", type=int, default=400, help="held-out pairs for own vs zeroed vector (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def first_point_title(ad: Any, max_chars: int = 120, max_added_chars: int = 40) -> str:
    """The ad's title with its first usable selling point's hook appended (``title - hook``): the same for
    every user. The ad's title (trimmed to the budget) when it has no usable point."""
    from creator.records.rewrite import good_hook, hook, variants

    title = " ".join(ad.title.split())
    hooks = [h for h in map(hook, ad.selling_points) if h and good_hook(h, title)]
    return variants(title, hooks[:1], max_chars=max_chars, max_added_chars=max_added_chars)[1 if hooks else 0]


def heldout_inputs(art: Path, gen: Path, data: str, fmt: str, ads: dict[str, Any],
                   out: Path) -> tuple[Path, Path, Path, set[str]]:
    """(creatives, first-point baseline creatives, segments of the held-out users, the held-out user ids)."""
    from app.quickstart import heldout_users
    from creator.io.records import iter_rows, write_records
    from creator.records.errors import Problems

    out.mkdir(parents=True, exist_ok=True)
    listed = heldout_users(art, data, fmt, out / "heldout_users.txt")
    if listed is None:
        raise SystemExit(f"{art / 'encoders'} records no user split: the held-out users are unknown")
    held = set(listed.read_text().split())
    segments = [r for _, r in iter_rows(gen / "segments.jsonl", Problems("fail")) if str(r["user_id"]) in held]
    creatives = [r for _, r in iter_rows(gen / "creatives.jsonl", Problems("fail"))]
    baseline = [{**r, "title": first_point_title(ads[str(r["ad_id"])]), "verdict": None, "scores": {},
                 "selling_points_used": []} if r["source"] == "personalized" else r for r in creatives]
    return (write_records(creatives, out / "creatives.jsonl"), write_records(baseline, out / "first_point.jsonl"),
            write_records(segments, out / "segments.jsonl"), held)


def evaluated(path: Path, fn: Any) -> dict[str, Any]:
    """``fn()``'s report, kept in ``path``: a rerun reads it back."""
    if path.exists():
        return json.loads(path.read_text())
    report = fn()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))
    return report


def eval_config(args: argparse.Namespace, systems: dict[str, Path], segments: Path, judge: Path, out: Path,
                fluency: str, calls: int, cache: Path) -> Any:
    from eval.config import EvalConfig

    return EvalConfig(systems={k: str(v) for k, v in systems.items()}, segments={k: str(segments) for k in systems},
                      ads=args.data, format=args.format, judge=str(judge), out=str(out), max_pairs=args.pairs,
                      seed=args.seed, cache_dir=str(cache), calls={k: calls for k in systems}, fluency=fluency,
                      sheet_pairs=0)


def judge_before(art: Path, data: str, fmt: str, out: Path) -> Path:
    """The demo's judge stage again with ``corruption_negatives 0`` in ``out`` (skipped when done)."""
    from app.demo_artifacts import DONE, STAGES

    if (out / DONE).exists():
        return out
    stage = next(s for s in STAGES if s.folder == "reward")
    config = stage.config(data, fmt, art, flags=["--corruption-negatives", "0", "--out", str(out)])
    stage.run(config)
    (out / DONE).touch()
    return out


def ci(d: dict[str, Any] | None, digits: int = 3, signed: bool = True) -> tuple[str, str, str]:
    """(estimate, "[low, high]", n) of an interval dict; differences carry their sign."""
    if not d:
        return "-", "-", "-"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f.format(d["estimate"]), f"[{f.format(d['low'])}, {f.format(d['high'])}]", str(d["n"])


def rule_of_three(errors: int, n: int) -> str:
    """95% upper bound on a rate with ``errors`` of ``n`` (3/n when none: the rule of three)."""
    if n == 0:
        return "-"
    if errors == 0:
        return f"[0, {3 / n:.4f}]"
    from scipy.stats import beta

    return f"[{beta.ppf(0.025, errors, n - errors + 1):.4f}, {beta.ppf(0.975, errors + 1, n - errors):.4f}]"


def table(after: dict[str, Any], before: dict[str, Any] | None, summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """The rows: (measure, value, 95% interval, n)."""
    systems = after["systems"]
    p, f, o = systems["personalized"], systems.get("first point"), systems["original"]
    fit = p.get("user_fit", {})
    rows: list[tuple[str, ...]] = []
    if "fluency_nll" in p:
        rows += [("fluency: NLL per token, original titles", *ci(o["fluency_nll"], signed=False)),
                 ("fluency: NLL per token, served titles that differ from the original",
                  *ci(p.get("fluency_nll_changed"), signed=False)),
                 ("  first-point baseline on the same pairs", *ci((f or {}).get("fluency_nll_changed"), signed=False)),
                 ("fluency gate pass rate, original titles", *ci(o["fluency_pass"], signed=False)),
                 ("fluency gate pass rate, served titles that differ from the original",
                  *ci(p.get("fluency_pass_changed"), signed=False)),
                 ("  first-point baseline on the same pairs", *ci((f or {}).get("fluency_pass_changed"), signed=False))]
    adv = p.get("adv_vs_original")
    if adv:
        rows.append(("judge Adv served vs original (all pairs), judge trained on corrupted titles", *ci(adv["ci"])))
    if before:
        b = before["systems"]["personalized"].get("adv_vs_original")
        rows.append(("  the same, judge before the fix (no corrupted titles)", *ci(b["ci"])))
    matrix = after.get("adv_matrix") or {}
    if "first point" in matrix.get("personalized", {}):
        rows.append(("judge Adv served vs first-point baseline (all pairs)",
                     f"{matrix['personalized']['first point']:+.3f}", "-", str(after["n_pairs"])))
    ads = summary["ads"]
    have_points = ads - summary.get("ads_without_selling_points", 0)
    rows += [("ads personalized for >= 1 segment (catalog)",
              f"{summary['ads_personalized']}/{ads}", "(a count, not a sample)", str(ads)),
             ("ads with selling points personalized",
              f"{summary.get('ads_with_selling_points_personalized_share', 0):.1%}", "(a count)", str(have_points)),
             ("generator calls spent / budget", f"{summary['generator_requests']}/{summary.get('max_calls') or '-'}",
              f"(ads x 2 = {2 * ads})", "-"),
             ("titles changed vs original (share of pairs)", f"{p['changed_vs_original']:.3f}", "-",
              str(after["n_pairs"])),
             ("history-similarity lift vs original, all pairs", *ci(p["similarity_lift"], 4)),
             ("history-similarity lift vs original, served titles that differ",
              *ci(p.get("similarity_lift_changed"), 4)),
             ("  first-point baseline on the same pairs", *ci((f or {}).get("similarity_lift_changed"), 4)),
             ("  served minus first-point baseline (paired)",
              *ci(after.get("personalized_minus_first_point_lift_changed"), 4)),
             ("future fit, own - swapped segment title", *ci(fit.get("future_fit_own_minus_swapped"), 4)),
             ("history fit, own - swapped segment title", *ci(fit.get("history_fit_own_minus_swapped"), 4)),
             ("judge own vs swapped segment title (Adv)", *ci(fit.get("judge_own_vs_swapped")))]
    fe = p["factual_error_rate"]
    errors = round(fe["estimate"] * fe["n"])
    rows.append(("factual errors served (rate)", f"{fe['estimate']:.4f}", rule_of_three(errors, fe["n"]), str(fe["n"])))
    return rows


def judge_rows(after: Path, before: Path | None) -> list[tuple[str, ...]]:
    """The judges' own held-out checks (their ``metrics.json``): click AUC on the test users, and how often
    the real title beats each kind of its corrupted versions for the same user and ad."""
    rows: list[tuple[str, ...]] = []
    for label, path in (("judge", after), ("  judge before the fix", before)):
        if path is None or not (path / "metrics.json").exists():
            continue
        m = json.loads((path / "metrics.json").read_text())
        auc = m["results"]["sampled_uniform"]["reward"]
        rows.append((f"{label}: click AUC, held-out users (4 sampled negatives each)", f"{auc['auc']:.4f}", "-",
                     str(auc["n"])))
        kinds = {k: v for k, v in (m.get("corruptions") or {}).items() if k != "all"}
        if kinds:
            worst = min(kinds, key=lambda k: kinds[k]["real_beats_corrupted"])
            rows.append((f"{label}: real title beats its corrupted version (all kinds; worst: {worst})",
                         f"{m['corruptions']['all']['real_beats_corrupted']:.3f}",
                         f"worst {kinds[worst]['real_beats_corrupted']:.3f}", str(m["corruptions"]["all"]["pairs"])))
    return rows


def on_changed(values: Any, titles: list[str], originals: list[str],
               keep: list[bool] | None = None) -> dict[str, Any] | None:
    """Mean and bootstrap interval of per-pair ``values`` over the pairs whose served title is not the original
    (or over ``keep``)."""
    import numpy as np

    from eval.metrics import bootstrap_ci

    keep = np.array(keep if keep is not None else [a != b for a, b in zip(titles, originals, strict=True)])
    x = np.asarray(values, dtype=float)[keep]
    x = x[np.isfinite(x)]
    if not len(x):
        return None
    got = bootstrap_ci(x)
    return {"estimate": got.estimate, "low": got.low, "high": got.high, "n": int(len(x))}


def vector_ablation(bundle: Any, catalog: Any, held: set[str], n: int, seed: int, margin: float) -> dict[str, Any]:
    """Greedy titles with each held-out user's own vector and a zero vector, for ``n`` sampled (user, ad) pairs
    of ads with selling points; the judge's Adv own over zeroed, the changed share and the history-fit gap."""
    import numpy as np

    from creator.modeling.generator import SamplingConfig
    from eval.metrics import bootstrap_ci

    models = bundle.load(cache_dir=bundle.embeddings)
    judge = bundle.load_judge(models.user_model, cache_dir=bundle.embeddings)
    rng = np.random.default_rng(seed)
    users = [catalog.users[u] for u in sorted(held) if catalog.users[u].history]
    ads = [a for a in sorted(catalog.ads.values(), key=lambda a: a.ad_id) if a.selling_points]
    U = [users[i] for i in rng.integers(0, len(users), n)]
    A = [ads[i] for i in rng.integers(0, len(ads), n)]
    own = np.asarray(models.user_vectors(U), dtype=np.float32)  # the space the generator reads
    greedy = SamplingConfig(greedy=True, max_new_tokens=40)
    t_own = [t[0] for t in models.generator.generate_batched(A, own, greedy)]
    t_zero = [t[0] for t in models.generator.generate_batched(A, np.zeros_like(own), greedy)]
    d = np.asarray(judge.score(U, t_own, A)) - np.asarray(judge.score(U, t_zero, A))
    sign = np.where(d > margin, 1.0, np.where(d < -margin, -1.0, 0.0))
    embed = models.user_model.embed_items  # the item encoder (MiniLM), through the bundle's cache
    out: dict[str, Any] = {"n": n, "changed": float(np.mean([a != b for a, b in zip(t_own, t_zero, strict=True)])),
                           "adv_own_vs_zero": bootstrap_ci(sign).to_dict(),
                           "examples": [{"ad": a.title, "own": o, "zero": z} for a, o, z in
                                        list(zip(A, t_own, t_zero, strict=True))[:10]]}
    hist = np.stack([np.asarray(embed([h.title for h in u.history])).mean(0) for u in U])
    means = hist / np.linalg.norm(hist, axis=1, keepdims=True).clip(1e-8)

    def fit(titles: list[str]) -> Any:
        v = np.asarray(embed(titles))
        return ((v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-8)) * means).sum(1)

    out["history_fit_own_minus_zero"] = bootstrap_ci(fit(t_own) - fit(t_zero)).to_dict()
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    art, gen = run / "artifacts", run / "generate"
    if not (gen / "summary.json").exists():
        raise SystemExit(f"{run} is not a finished quickstart run (no generate/summary.json); run make demo SERVE=0")
    from creator.bundle import ModelBundle
    from creator.io import detect_format, load_catalog
    from eval.report import evaluate

    fmt = detect_format(args.data) if args.format == "auto" else args.format
    started = time.time()
    summary = json.loads((gen / "summary.json").read_text())
    catalog = load_catalog(args.data, fmt)
    creatives, first_point, segments, held = heldout_inputs(art, gen, args.data, fmt, catalog.ads, out / "inputs")
    systems = {"personalized": creatives, "first point": first_point}
    bundle = ModelBundle.read(art)
    cache = bundle.embeddings

    def after_report() -> dict[str, Any]:
        cfg = eval_config(args, systems, segments, bundle.path("judge"), out / "after", args.fluency,
                          summary["generator_requests"], cache)
        import numpy as np

        from creator.modeling.fluency import FluencyScorer, resolve_reference
        from eval.report import fluency_gate

        reference = resolve_reference(args.fluency, flag="--fluency")
        scorer = FluencyScorer.from_pretrained(reference) if reference else None
        report, arrays = evaluate(cfg, judge=bundle.load_judge(cache_dir=cache), fluency=scorer)
        originals = arrays["titles"]["original"]
        gate = fluency_gate(cfg, scorer, list(catalog.ads.values())) if scorer else None
        changed = [a != b for a, b in zip(arrays["titles"]["personalized"], originals, strict=True)]
        for name in systems:  # the same pairs for both: where the run served a personalized title
            served, p = arrays["titles"][name], report["systems"][name]
            p["similarity_lift_changed"] = on_changed(arrays["sim_lift"][name], served, originals, changed)
            if gate is not None:  # the report's gate again: every score comes from the scorer's cache
                p["fluency_nll_changed"] = on_changed(gate.scorer.score(served), served, originals, changed)
                p["fluency_pass_changed"] = on_changed([gate.passes(v) for v in gate.values(served)], served,
                                                       originals, changed)
        lifts = arrays["sim_lift"]
        lift = np.asarray(lifts["personalized"], float) - np.asarray(lifts["first point"], float)
        report["personalized_minus_first_point_lift_changed"] = on_changed(lift, originals, originals, changed)
        return report

    after = evaluated(out / "after.json", after_report)
    before = None
    if not args.no_before:
        jb = judge_before(art, args.data, fmt, out / "judge_before")

        def before_report() -> dict[str, Any]:
            from eval.judge import load_reward_model

            cfg = eval_config(args, systems, segments, jb / "reward_model", out / "before", "off",
                              summary["generator_requests"], cache)
            return evaluate(cfg, judge=load_reward_model(jb / "reward_model"), fluency=None)[0]

        before = evaluated(out / "before.json", before_report)

    ablation = None
    if args.ablation_pairs:
        ablation = evaluated(out / "ablation.json", lambda: vector_ablation(
            bundle, catalog, held, args.ablation_pairs, args.seed, 0.01))

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    head = (f"run {run} (commit {commit or '?'}), {after['n_pairs']} pairs of {after['n_users']} of "
            f"{len(held)} held-out users x {after['n_ads']} ads; fluency reference: "
            f"{(after.get('fluency') or {}).get('reference', 'off')}; machine: {os.cpu_count()} cores, "
            f"{platform.processor() or platform.machine()}, load {load[0]:.1f}; {time.time() - started:.0f} s")
    rows = table(after, before, summary) + judge_rows(bundle.path("judge").parent,
                                                      None if args.no_before else out / "judge_before")
    if ablation:
        rows += [("judge Adv, own user vector over zero vector (greedy, per user)", *ci(ablation["adv_own_vs_zero"])),
                 ("history fit, own user vector - zero vector", *ci(ablation.get("history_fit_own_minus_zero"), 4)),
                 ("titles changed by zeroing the user vector", f"{ablation['changed']:.3f}", "-", str(ablation["n"]))]
    lines = [head, "", "| measure | value | 95% CI | n |", "|---|---:|---|---:|",
             *(f"| {' | '.join(r)} |" for r in rows)]
    text = "\n".join(lines)
    print(text)
    (out / "quality.md").write_text(text + "\n")
    (out / "quality.json").write_text(json.dumps({"header": head, "rows": rows, "summary_coverage": {
        k: summary.get(k) for k in ("ads", "ads_personalized", "ads_personalized_share", "generator_requests",
                                    "max_calls", "segments_per_ad")}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
