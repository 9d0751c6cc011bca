"""``hllm-creator generate``: personalised titles for a catalog, per audience segment, resumable.

    hllm-creator generate --ads ../shared/data/amazon_office_products \\
        --users ../shared/data/amazon_office_products --format amazon2018 \\
        --model runs/tiny --out runs/generate --clusters 64 --top-m 20 --candidates 4

``--model DIR`` holds the trained parts: ``DIR/user_model`` (train-encoders), ``DIR/generator``
(sft/dpo) and optionally ``DIR/reward`` (the judge that reranks candidates; without it the first
candidate that passes the guard wins). ``--user-model``, ``--generator`` and ``--judge-model`` point
at them one by one. Rerunning the same command after a crash resumes from the last finished shard.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from creator.backends.base import SamplingConfig
from creator.backends.hf import HFBackend
from creator.pipeline.catalog import Components, PipelineConfig, generate_for_catalog, write_outputs
from creator.records.errors import DataError

logger = logging.getLogger(__name__)

# Exit codes: 0 every input row was used; 2 bad input or flags (nothing generated); 3 generated, but rows were
# rejected under --on-error skip (a lossy run: the count and the rejects files are on stderr and in summary.json).
EXIT_BAD_INPUT = 2
EXIT_LOSSY = 3

EXAMPLE = """example:
  hllm-creator generate --ads ../shared/data/amazon_office_products \\
      --users ../shared/data/amazon_office_products --format amazon2018 \\
      --model runs/tiny --out runs/generate --clusters 64 --top-m 20 --candidates 4 --seed 0
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hllm-creator generate", description=__doc__.split("\n")[0],
                                epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with any of the options below (flags override it)")
    io = p.add_argument_group("data")
    io.add_argument("--ads", required=True, help="catalog with the ads (folder or file)")
    io.add_argument("--users", required=True, help="catalog with the users (may be the same as --ads)")
    io.add_argument("--format", default="auto",
                    help="input format: auto, amazon2018, mind, hllm, jsonl, csv or parquet")
    io.add_argument("--only-ads", help="restrict to these ad ids (comma list or a file, one per line)")
    io.add_argument("--only-users", help="restrict to these user ids (comma list or a file, one per line)")
    io.add_argument("--on-error", choices=("skip", "fail"), default="skip",
                    help="bad or duplicate input rows: skip and count them (default) or stop")
    m = p.add_argument_group("models")
    m.add_argument("--model", required=True, help="folder with user_model/, generator/, optional reward/")
    m.add_argument("--user-model", help="default: MODEL/user_model")
    m.add_argument("--generator", help="default: MODEL/generator")
    m.add_argument("--judge-model", help="default: MODEL/reward when it exists; 'none' disables reranking")
    m.add_argument("--cache-dir", help="MiniLM embedding cache, e.g. the one training wrote (no text embedded twice)")
    seg = p.add_argument_group("segments and pruning")
    seg.add_argument("--clusters", type=int, help="segments K (default: ceil(sqrt(users)), at most 1024)")
    seg.add_argument("--representative", choices=("centroid", "medoid"), default="centroid")
    seg.add_argument("--match-threshold", type=float, help="keep pairs with match probability >= T")
    seg.add_argument("--top-m", type=int, help="keep at most the M best-matching ads per segment")
    seg.add_argument("--ad-top-k", type=int,
                     help="also keep each ad's K best-matching segments (catalog coverage; with --top-m: either rule)")
    seg.add_argument("--max-calls", type=int,
                     help="at most N generator requests: each ad's best pair first (by match), then the rest by match")
    s = p.add_argument_group("sampling")
    s.add_argument("--candidates", type=int, default=4, help="titles generated per kept pair (n)")
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--top-p", type=float, default=0.95)
    s.add_argument("--top-k", type=int, default=50)
    s.add_argument("--max-new-tokens", type=int, default=48)
    s.add_argument("--greedy", action="store_true", help="argmax decoding (forces --candidates 1)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--grounding", choices=("auto", "on", "off"), default="auto",
                   help="grounded decoding: titles use only the ad's own words (auto: as the generator was saved)")
    e = p.add_argument_group("engine")
    e.add_argument("--backend", choices=("hf", "vllm", "ray"), default="hf")
    e.add_argument("--batch-size", type=int, default=16, help="requests per generator batch")
    e.add_argument("--device", help="torch device for the hf backend (default: the model's)")
    e.add_argument("--num-actors", type=int, default=1, help="ray: actors, each holding one hf backend")
    e.add_argument("--max-lora-rank", type=int, default=16, help="vllm: the adapter's LoRA rank or more")
    e.add_argument("--shard-size", type=int, help="kept pairs per shard (default 256; 4096 with ray)")
    ch = p.add_argument_group("channel")
    ch.add_argument("--channel", default="generic",
                    help="where the titles run: google-rsa-headline (<=30), google-rsa-description (<=90), "
                         "meta-headline (<=40), merchant-title (<=150) or generic (default, <=120)")
    ch.add_argument("--export", choices=("google-ads",),
                    help="also write google_ads.csv for Google Ads Editor (the Google Ads channels)")
    ch.add_argument("--campaign", default="hllm-creator", help="google-ads export: the campaign name")
    ch.add_argument("--final-url", default="", help="google-ads export: the final URL, {ad_id} filled in")
    fl = p.add_argument_group("fluency gate (docs/fluency.md)")
    fl.add_argument("--fluency-gate", default="off",
                    help="reject candidates that do not read as text (guard rule disfluent): off (default); auto "
                         "(gemma-270m when installed, else MODEL/lm, the catalog's pretrained LM); or a named "
                         "base / LM folder")
    fl.add_argument("--fluency-percentile", type=float, default=95.0,
                    help="threshold = this percentile of the catalog titles' NLL per token (default 95)")
    fl.add_argument("--fluency-normalize", choices=("none", "unigram"), default="unigram",
                    help="gate the NLL in excess of the catalog's word frequencies (unigram, default: rare "
                         "model numbers do not count as disfluent) or the raw NLL (none)")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, help="output folder (also the resume state)")
    o.add_argument("--output-format", choices=("parquet", "jsonl", "csv"), default="parquet")
    o.add_argument("--per-user", action="store_true", help="also write user_creatives (users x ads rows)")
    o.add_argument("--overwrite", action="store_true", help="discard a run in --out instead of resuming")
    o.add_argument("--no-progress", action="store_true")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    config_path = _peek_config(argv)
    if config_path:
        import yaml

        values = yaml.safe_load(Path(config_path).read_text()) or {}
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(k.replace("-", "_") for k in values) - known)
        if unknown:
            raise SystemExit(f"error: {config_path}: unknown option(s) {unknown}; use the long flag names "
                             "without dashes (e.g. match_threshold)")
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in values.items()})
        for action in parser._actions:  # values from the YAML satisfy required flags
            if action.dest in {k.replace("-", "_") for k in values}:
                action.required = False
    return parser.parse_args(argv)


def _peek_config(argv: list[str] | None) -> str | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _id_list(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    path = Path(spec)
    if path.exists():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s.strip() for s in spec.split(",") if s.strip()]


def load_inputs(args: argparse.Namespace) -> tuple[list, list, dict[str, Any]]:
    """Ads and users in file order, plus counts of what was skipped, duplicated or unknown."""
    from creator.io import load_catalog

    ads_cat = load_catalog(args.ads, args.format, on_error=args.on_error).require_ads()
    users_cat = ads_cat if Path(args.users).resolve() == Path(args.ads).resolve() else \
        load_catalog(args.users, args.format, on_error=args.on_error)
    ads, users = list(ads_cat.ads.values()), list(users_cat.users.values())
    problems = [*ads_cat.problems.errors, *([] if users_cat is ads_cat else users_cat.problems.errors)]
    notes: dict[str, Any] = {
        "rejected_rows": len(problems),
        "capped_fields": len(ads_cat.problems.capped) + (0 if users_cat is ads_cat else len(users_cat.problems.capped)),
        "duplicate_ids_in_files": sum(1 for e in problems if e.message.startswith("duplicate")),
        "history_items_not_in_catalog": int(sum(users_cat.missing_ids.values())),
    }
    for what, spec, items, key in (("ads", args.only_ads, ads, "ad_id"), ("users", args.only_users, users,
                                                                          "user_id")):
        wanted = _id_list(spec)
        if wanted is None:
            continue
        have = {getattr(x, key) for x in items}
        unknown = [i for i in dict.fromkeys(wanted) if i not in have]
        notes[f"unknown_{what}_ids"] = len(unknown)
        if unknown:
            logger.warning("%d requested %s ids are not in the catalog (e.g. %s); they are skipped",
                           len(unknown), what, unknown[:5])
        keep = set(wanted)
        items[:] = [x for x in items if getattr(x, key) in keep]
    notes["lossy"] = bool(problems)
    if problems:
        from creator.io.records import write_rejects

        Path(args.out).mkdir(parents=True, exist_ok=True)
        written = [write_rejects(ads_cat.problems, Path(args.out) / "rejects_ads.jsonl")]
        if users_cat is not ads_cat:
            written.append(write_rejects(users_cat.problems, Path(args.out) / "rejects_users.jsonl"))
        notes["rejects_files"] = [str(p) for p in written if p is not None]
    return ads, users, notes


def load_components(args: argparse.Namespace, ads: list) -> Components:
    """The trained parts from their artefact folders (names as agreed in the project's interfaces);
    the guard knows the catalog's brands (``known_brands_from_ads``) to catch a wrong brand."""
    user_dir, generator_dir, judge_dir = model_dirs(args)
    from creator.guard.check import Guard, known_brands_from_ads
    from creator.modeling.generator import PersonalizedGenerator
    from creator.modeling.user_model import UserModel
    from creator.segments.matching import match_scores

    cache = getattr(args, "cache_dir", None)
    user_model = UserModel.from_pretrained(user_dir, cache_dir=cache)
    generator = PersonalizedGenerator.from_pretrained(generator_dir)
    judge = None
    if judge_dir is not None:
        from creator.reward.model import RewardModel, find_user_model_dir

        # a judge trained on this very user model (train-reward --user-model-dir) shares it: one copy, one cache
        stored = json.loads((judge_dir / "config.json").read_text()).get("user_model_dir") \
            if (judge_dir / "config.json").exists() else None
        found = find_user_model_dir(judge_dir, stored) if stored else None
        same = found is not None and user_dir.resolve() in (found, found / "user_model")
        judge = RewardModel.from_pretrained(judge_dir, cache_dir=cache, user_model=user_model if same else None)
    grounding = getattr(args, "grounding", "auto")
    if grounding != "auto":
        generator.config.grounded = grounding == "on"
    import functools

    from creator.channels.presets import get_channel
    from creator.guard.check import GuardConfig

    channel = get_channel(getattr(args, "channel", "generic"))
    guard = Guard(GuardConfig.for_channel(channel), known_brands=known_brands_from_ads(ads),
                  fluency=fluency_gate(args, ads))
    return Components(user_model=user_model, match=lambda u, a: match_scores(user_model, u, a),
                      prompt_embeds=generator.prompt_embeds, backend=build_backend(args, generator),
                      guard=guard,
                      judge=judge, grounding=functools.partial(generator.grounding, max_chars=channel.budget,
                                                               wide=channel.wide_counts_double))


def fluency_gate(args: argparse.Namespace, ads: list) -> Any:
    """``--fluency-gate``: None when off; else a ``FluencyGate`` calibrated on these ads' own titles."""
    from creator.guard.fluency import calibrate, resolve_reference

    reference = resolve_reference(getattr(args, "fluency_gate", "off"), catalog_lm=Path(args.model) / "lm")
    if reference is None:
        return None
    from creator.guard.fluency import FluencyScorer, catalog_unigram

    scorer = FluencyScorer.from_pretrained(reference)
    unigram = catalog_unigram(scorer, ads) if getattr(args, "fluency_normalize", "unigram") == "unigram" else None
    return calibrate(scorer, [a.title for a in ads], getattr(args, "fluency_percentile", 95.0), unigram=unigram)


def model_dirs(args: argparse.Namespace) -> tuple[Path, Path, Path | None]:
    """The user model, generator and (optional) judge folders; a clear error when one is missing."""
    model_dir = Path(args.model)
    user_dir = Path(args.user_model) if args.user_model else _first(model_dir, "user_model",
                                                                     "encoders/user_model")
    generator_dir = Path(args.generator) if args.generator else model_dir / "generator"
    for flag, path, how in (("--user-model", user_dir, "hllm-creator train-encoders --out DIR"),
                            ("--generator", generator_dir, "the generator's training verb")):
        if not path.is_dir():
            raise DataError("model folder not found", file=str(path), expected=f"a folder saved by {how}",
                            got="nothing there", fix=f"train it, or pass --model DIR (or {flag} PATH)")
    # train-reward --out DIR writes DIR/reward_model/: accept that folder, its parent, or MODEL/reward*
    judge_dir = Path(args.judge_model) if args.judge_model else _first(model_dir, "reward/reward_model",
                                                                        "reward_model", "reward")
    if (judge_dir / "reward_model").is_dir():
        judge_dir = judge_dir / "reward_model"
    if args.judge_model == "none" or not judge_dir.is_dir():
        if args.judge_model not in (None, "none"):
            raise DataError("judge folder not found", file=str(judge_dir), expected="a saved RewardModel",
                            got="nothing there", fix="pass --judge-model PATH, or none to skip reranking")
        judge_dir = None
    return user_dir, generator_dir, judge_dir


def _first(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).exists():
            return root / name
    return root / names[0]


def build_backend(args: argparse.Namespace, generator: Any) -> Any:
    if args.backend == "vllm":
        from creator.backends.vllm import VLLMBackend

        return VLLMBackend.from_generator(generator, max_lora_rank=args.max_lora_rank)
    if args.backend == "ray":
        import functools

        from creator.backends.ray import RayBackend

        generator_dir = str(args.generator or Path(args.model) / "generator")
        factory = functools.partial(_hf_backend_from_dir, generator_dir, args.batch_size, args.device)
        return RayBackend(factory, num_actors=args.num_actors, batch_size=args.batch_size)
    return HFBackend.from_generator(generator, batch_size=args.batch_size, device=args.device)


def _hf_backend_from_dir(generator_dir: str, batch_size: int, device: str | None) -> Any:
    """Runs inside each Ray actor: load the generator there, not in the driver."""
    from creator.modeling.generator import PersonalizedGenerator

    generator = PersonalizedGenerator.from_pretrained(generator_dir)
    return HFBackend.from_generator(generator, batch_size=batch_size, device=device)


def summary_table(summary: dict[str, Any], notes: dict[str, Any]) -> str:
    rows = [(k.replace("_", " "), v) for k, v in {**summary, **notes}.items()
            if k not in ("seconds", "rejected_by_rule", "segments_per_ad")]
    if summary.get("segments_per_ad", {}).get("histogram"):
        rows.append(("segments per ad (personalized)", ", ".join(
            f"{b}: {n}" for b, n in summary["segments_per_ad"]["histogram"].items())))
    rows += [(f"rejected: {rule}", n) for rule, n in summary["rejected_by_rule"].items()]
    rows += [(f"seconds: {stage}", f"{sec:.2f}") for stage, sec in summary["seconds"].items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _check_channel(args: argparse.Namespace) -> None:
    """An unknown channel, or --export google-ads for a non-Google channel: a one-line DataError."""
    from creator.channels.presets import get_channel

    ch = get_channel(getattr(args, "channel", "generic"))
    if getattr(args, "export", None) == "google-ads" and ch.export is None:
        raise DataError("--export google-ads needs a Google Ads channel", field="channel",
                        expected="google-rsa-headline or google-rsa-description", got=repr(ch.name),
                        fix="add --channel google-rsa-headline")


def _check_fluency(args: argparse.Namespace) -> None:
    """A --fluency-gate that names no LM, or a percentile out of range: a one-line DataError before loading."""
    from creator.guard.fluency import resolve_reference

    resolve_reference(getattr(args, "fluency_gate", "off"), catalog_lm=Path(args.model) / "lm")
    pct = getattr(args, "fluency_percentile", 95.0)
    if not 0 < pct <= 100:
        raise DataError("--fluency-percentile out of range", field="fluency_percentile", expected="(0, 100]",
                        got=str(pct), fix="use e.g. --fluency-percentile 95")


def export_google_ads(result: Any, parts: Components, ads: list, args: argparse.Namespace, out: Path) -> Any:
    """``google_ads.csv``: per segment (ad group) and ad, at least 3 headlines and 2 descriptions where grounded
    material allows (``creator.channels.rsa_assets``); the rows that fall short are counted and logged."""
    from creator.io.google_ads import write_google_ads_csv

    return write_google_ads_csv(result.creatives, out / "google_ads.csv", channel=args.channel,
                                ads={a.ad_id: a for a in ads}, guard=parts.guard, alternates=result.alternates,
                                campaign=args.campaign, final_url=args.final_url)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = PipelineConfig(clusters=args.clusters, representative=args.representative,
                                match_threshold=args.match_threshold, top_m=args.top_m,
                                channel=getattr(args, "channel", "generic"),
                                ad_top_k=args.ad_top_k, max_calls=args.max_calls,
                                shard_size=args.shard_size or (4096 if args.backend == "ray" else 256))
        sampling = SamplingConfig(n=1 if args.greedy else args.candidates, temperature=args.temperature,
                                  top_p=args.top_p, top_k=args.top_k, max_new_tokens=args.max_new_tokens,
                                  seed=args.seed, greedy=args.greedy)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.overwrite:
        for name in ("manifest.json", "plan.npz", "plan.json", "shards"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    model_dirs(args)  # fail before the (long) data loading when a model folder is missing
    _check_channel(args)
    _check_fluency(args)
    ads, users, notes = load_inputs(args)
    parts = load_components(args, ads)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {"args": {k: v for k, v in vars(args).items() if k != "config"}, "pipeline": asdict(config),
                "sampling": asdict(sampling)}
    import yaml

    (out / "resolved_config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(resolved, default=str)),
                                                             sort_keys=False))
    models = [args.model, args.user_model, args.generator, args.judge_model, args.backend,
              getattr(args, "grounding", "auto")]
    gate = getattr(parts.guard, "fluency", None)
    if gate is not None:  # only a gated run changes the fingerprint: ungated runs resume as before
        models.append(gate.to_dict())
        (out / "fluency.json").write_text(json.dumps(gate.to_dict(), indent=1))
    try:
        result = generate_for_catalog(ads, users, parts, config, sampling, out_dir=out,
                                      fingerprint_extra=json.dumps(models), progress=not args.no_progress)
    except ValueError as err:  # e.g. --out holds another run, or no ads/users left after filtering
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = write_outputs(result, out, args.output_format, per_user=args.per_user)
    summary = result.summary.to_dict()
    if getattr(args, "export", None) == "google-ads":
        export = export_google_ads(result, parts, ads, args, out)
        paths["google_ads"] = export.path
        notes = {**notes, **export.summary()}
    from eval.metrics.user_fit import segment_title_differences

    by_id = {u.user_id: u for u in users}
    summary["segment_titles"] = segment_title_differences(
        {(c.segment_id, c.ad_id): c.title for c in result.creatives}, result.user_segments, by_id)
    (out / "summary.json").write_text(json.dumps({**summary, **notes}, indent=1))
    print(f"\ngenerate: {out}\n{summary_table(summary, notes)}")
    if notes.get("google_ads_incomplete"):
        print(f"warning: {notes['google_ads_incomplete']} of the google_ads.csv ad groups have fewer than 3 "
              "headlines or 2 descriptions that pass the guard (listed in the log); add some in Google Ads "
              "Editor before posting", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if notes["lossy"]:  # a scheduled job must be able to tell this run from a clean one
        print(f"warning: lossy run: {notes['rejected_rows']} input rows rejected under --on-error skip and left out "
              f"(rows and reasons in {', '.join(notes['rejects_files'])}); exit code {EXIT_LOSSY}. "
              "Fix the rows, or pass --on-error fail to stop at the first one", file=sys.stderr)
        return EXIT_LOSSY
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
