"""``hllm-creator generate``: personalised titles for a catalog, per audience segment, resumable.

    hllm-creator generate --ads ../shared/data/amazon_office_products \\
        --users ../shared/data/amazon_office_products --format amazon2018 \\
        --model runs/quickstart/artifacts --out runs/generate --clusters 64 --top-m 20 --candidates 4
    hllm-creator generate --config app/configs/generate.yaml --out runs/generate

``--model DIR`` is a model bundle (``creator.bundle``): the user model, the generator and optionally the
judge that reranks candidates (without it the first candidate that passes the guard wins), as
``hllm-creator quickstart`` trains them into ``OUT/artifacts``. ``--user-model``, ``--generator`` and
``--judge-model`` replace one part. Rerunning the same command after a crash resumes from the last finished
shard. ``main(argv)`` parses the options (``GenerateConfig``) and calls ``run(config)``, which Python
callers (quickstart) call directly.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from creator.backends.base import SamplingConfig
from creator.backends.hf import HFBackend
from creator.bundle import ModelBundle
from creator.config import run_verb
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
      --model runs/quickstart/artifacts --out runs/generate --clusters 64 --top-m 20 --candidates 4 --seed 0
"""


def _opt(text: str, default: Any = None) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class GenerateConfig:
    """Options of ``hllm-creator generate`` (flags ``--name`` or ``--name-with-dashes``; YAML keys ``name``)."""

    # data
    ads: str = field(metadata={"help": "catalog with the ads (folder or file)"})
    users: str = field(metadata={"help": "catalog with the users (may be the same as --ads)"})
    model: str = field(metadata={"help": "model bundle: user model, generator, optional judge (creator/bundle.py)"})
    out: str = field(metadata={"help": "output folder (also the resume state)"})
    format: str = _opt("input format: auto, amazon2018, mind, hllm, jsonl, csv or parquet", "auto")
    only_ads: str | None = _opt("restrict to these ad ids (comma list or a file, one per line)")
    only_users: str | None = _opt("restrict to these user ids (comma list or a file, one per line)")
    on_error: Literal["skip", "fail"] = _opt("bad or duplicate input rows: skip and count them (default) or stop",
                                             "skip")
    # models
    user_model: str | None = _opt("another user model folder than the bundle's")
    generator: str | None = _opt("another generator folder than the bundle's")
    judge_model: str | None = _opt("another judge folder than the bundle's; 'none' disables reranking")
    cache_dir: str | None = _opt("MiniLM embedding cache, e.g. the one training wrote (no text embedded twice)")
    # segments and pruning
    clusters: int | None = _opt("segments K (default: ceil(sqrt(users)), at most 1024)")
    representative: Literal["centroid", "medoid"] = _opt("each segment's vector: centroid or medoid", "centroid")
    match_threshold: float | None = _opt("keep pairs with match probability >= T")
    top_m: int | None = _opt("keep at most the M best-matching ads per segment")
    ad_top_k: int | None = _opt("also keep each ad's K best-matching segments (catalog coverage; with --top-m: "
                                "either rule)")
    max_calls: int | None = _opt("at most N generator requests: each ad's best pair first (by match), then the "
                                 "rest by match")
    # sampling
    candidates: int = _opt("titles generated per kept pair (n)", 4)
    temperature: float = _opt("sampling temperature", 0.8)
    top_p: float = _opt("nucleus sampling mass", 0.95)
    top_k: int = _opt("sample among the K likeliest tokens", 50)
    max_new_tokens: int = _opt("tokens per title at most", 48)
    greedy: bool = _opt("argmax decoding (forces --candidates 1)", False)
    seed: int = _opt("sampling and clustering seed", 0)
    grounding: Literal["auto", "on", "off"] = _opt("grounded decoding: titles use only the ad's own words (auto: "
                                                   "as the generator was saved)", "auto")
    # engine
    backend: Literal["hf", "vllm", "ray"] = _opt("decoding engine", "hf")
    batch_size: int = _opt("requests per generator batch", 16)
    device: str | None = _opt("torch device for the hf backend (default: the model's)")
    num_actors: int = _opt("ray: actors, each holding one hf backend", 1)
    max_lora_rank: int = _opt("vllm: the adapter's LoRA rank or more", 16)
    shard_size: int | None = _opt("kept pairs per shard (default 256; 4096 with ray)")
    # channel
    channel: str = _opt("where the titles run: google-rsa-headline (<=30), google-rsa-description (<=90), "
                        "meta-headline (<=40), merchant-title (<=150) or generic (default, <=120)", "generic")
    export: Literal["google-ads"] | None = _opt("also write google_ads.csv for Google Ads Editor (the Google Ads "
                                                "channels)")
    campaign: str = _opt("google-ads export: the campaign name", "hllm-creator")
    final_url: str = _opt("google-ads export: the final URL, {ad_id} filled in", "")
    # fluency gate (docs/fluency.md)
    fluency_gate: str = _opt("reject candidates that do not read as text (guard rule disfluent): off (default); "
                             "auto (gemma-270m when installed, else MODEL/lm, the catalog's pretrained LM); or a "
                             "named base / LM folder", "off")
    fluency_percentile: float = _opt("threshold = this percentile of the catalog titles' NLL per token", 95.0)
    fluency_normalize: Literal["none", "unigram"] = _opt(
        "gate the NLL in excess of the catalog's word frequencies (unigram, default: rare model numbers do not "
        "count as disfluent) or the raw NLL (none)", "unigram")
    # output
    output_format: Literal["parquet", "jsonl", "csv"] = _opt("creatives and segments file format", "parquet")
    per_user: bool = _opt("also write user_creatives (users x ads rows)", False)
    overwrite: bool = _opt("discard a run in --out instead of resuming", False)
    no_progress: bool = _opt("no progress bars", False)

    def pipeline(self) -> PipelineConfig:
        """Segmenting and pruning (a ``ValueError`` names a bad value)."""
        return PipelineConfig(clusters=self.clusters, representative=self.representative,
                              match_threshold=self.match_threshold, top_m=self.top_m, channel=self.channel,
                              ad_top_k=self.ad_top_k, max_calls=self.max_calls,
                              shard_size=self.shard_size or (4096 if self.backend == "ray" else 256))

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(n=1 if self.greedy else self.candidates, temperature=self.temperature,
                              top_p=self.top_p, top_k=self.top_k, max_new_tokens=self.max_new_tokens,
                              seed=self.seed, greedy=self.greedy)

    def bundle(self) -> ModelBundle:
        """The model bundle in ``model``, with the parts given one by one; a ``DataError`` when incomplete."""
        return ModelBundle.read(self.model, user_model=self.user_model, generator=self.generator,
                                judge=self.judge_model)


def parse_config(argv: list[str] | None = None) -> GenerateConfig:
    """Defaults, then ``--config YAML``, then the flags (``creator.config.parse``)."""
    from creator import config as options

    return options.parse([GenerateConfig], argv, description=__doc__.split("\n")[0], epilog=EXAMPLE)[0]


def _id_list(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    path = Path(spec)
    if path.exists():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s.strip() for s in spec.split(",") if s.strip()]


def load_inputs(args: GenerateConfig) -> tuple[list, list, dict[str, Any]]:
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
        # duplicates are counted once, where they are read (the first row of an id is kept, the others rejected)
        "duplicate_ad_ids": sum(1 for e in problems if e.message.startswith(("duplicate ad_id", "duplicate news id"))),
        "duplicate_user_ids": sum(1 for e in problems if e.message.startswith("duplicate user_id")),
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


def build_components(config: GenerateConfig, bundle: ModelBundle, ads: list) -> Components:
    """The catalog job's parts: the bundle's models, the engine that decodes for the generator, and a guard for
    the channel that knows the catalog's brands (``known_brands_from_ads``) to catch a wrong brand."""
    from creator.channels.presets import get_channel
    from creator.guard.check import Guard, GuardConfig, known_brands_from_ads

    models = bundle.load(cache_dir=config.cache_dir)
    if config.grounding != "auto":
        models.generator.config.grounded = config.grounding == "on"
    channel = get_channel(config.channel)
    guard = Guard(GuardConfig.for_channel(channel), known_brands=known_brands_from_ads(ads),
                  fluency=fluency_gate(config, ads))
    return models.components(guard, build_backend(config, bundle, models.generator), decode_chars=channel.budget)


def fluency_gate(config: GenerateConfig, ads: list) -> Any:
    """``--fluency-gate``: None when off; else a ``FluencyGate`` calibrated on these ads' own titles."""
    from creator.modeling.fluency import calibrate, resolve_reference

    reference = resolve_reference(config.fluency_gate, catalog_lm=Path(config.model) / "lm")
    if reference is None:
        return None
    from creator.modeling.fluency import FluencyScorer, catalog_unigram

    scorer = FluencyScorer.from_pretrained(reference)
    unigram = catalog_unigram(scorer, ads) if config.fluency_normalize == "unigram" else None
    return calibrate(scorer, [a.title for a in ads], config.fluency_percentile, unigram=unigram)


def build_backend(config: GenerateConfig, bundle: ModelBundle, generator: Any) -> Any:
    if config.backend == "vllm":
        from creator.backends.vllm import VLLMBackend

        return VLLMBackend.from_generator(generator, max_lora_rank=config.max_lora_rank)
    if config.backend == "ray":
        import functools

        from creator.backends.ray import RayBackend

        factory = functools.partial(_hf_backend_from_dir, str(bundle.path("generator")), config.batch_size,
                                    config.device)
        return RayBackend(factory, num_actors=config.num_actors, batch_size=config.batch_size)
    return HFBackend.from_generator(generator, batch_size=config.batch_size, device=config.device)


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


def _check_channel(config: GenerateConfig) -> None:
    """An unknown channel, or --export google-ads for a non-Google channel: a one-line DataError."""
    from creator.channels.presets import get_channel

    ch = get_channel(config.channel)
    if config.export == "google-ads" and ch.export is None:
        raise DataError("--export google-ads needs a Google Ads channel", field="channel",
                        expected="google-rsa-headline or google-rsa-description", got=repr(ch.name),
                        fix="add --channel google-rsa-headline")


def _check_fluency(config: GenerateConfig) -> None:
    """A --fluency-gate that names no LM, or a percentile out of range: a one-line DataError before loading."""
    from creator.modeling.fluency import resolve_reference

    resolve_reference(config.fluency_gate, catalog_lm=Path(config.model) / "lm")
    pct = config.fluency_percentile
    if not 0 < pct <= 100:
        raise DataError("--fluency-percentile out of range", field="fluency_percentile", expected="(0, 100]",
                        got=str(pct), fix="use e.g. --fluency-percentile 95")


def export_google_ads(result: Any, parts: Components, ads: list, config: GenerateConfig, out: Path) -> Any:
    """``google_ads.csv``: per segment (ad group) and ad, at least 3 headlines and 2 descriptions where grounded
    material allows (``creator.channels.rsa_assets``); the rows that fall short are counted and logged."""
    from creator.io.google_ads import write_google_ads_csv

    return write_google_ads_csv(result.creatives, out / "google_ads.csv", channel=config.channel,
                                ads={a.ad_id: a for a in ads}, guard=parts.guard, alternates=result.alternates,
                                campaign=config.campaign, final_url=config.final_url)


def main(argv: list[str] | None = None) -> int:
    """``hllm-creator generate``: parse the options, then ``run``."""
    return run_verb(parse_config, run, argv)


def run(config: GenerateConfig) -> int:
    """The catalog job: check the options and the bundle, load the inputs and the models, generate (resuming the
    shards in ``config.out``), write the outputs. Returns the exit code (0, ``EXIT_BAD_INPUT``, ``EXIT_LOSSY``)."""
    try:
        pipeline, sampling = config.pipeline(), config.sampling()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(config.out)
    if config.overwrite:
        _discard_run(out)
    bundle = config.bundle()  # fail before the (long) data loading when a part of the bundle is missing
    _check_channel(config)
    _check_fluency(config)
    ads, users, notes = load_inputs(config)
    parts = build_components(config, bundle, ads)
    out.mkdir(parents=True, exist_ok=True)
    from creator.config import save_resolved

    save_resolved(out / "resolved_config.yaml", config)
    try:
        result = generate_for_catalog(ads, users, parts, pipeline, sampling, out_dir=out,
                                      fingerprint_extra=_models_fingerprint(config, parts, out),
                                      progress=not config.no_progress)
    except ValueError as err:  # e.g. --out holds another run, or no ads/users left after filtering
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _finish(config, result, parts, ads, users, notes)


def _discard_run(out: Path) -> None:
    """``--overwrite``: remove the run state in ``out`` (manifest, plan, shards) so the run starts afresh."""
    for name in ("manifest.json", "plan.npz", "plan.json", "shards"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _models_fingerprint(config: GenerateConfig, parts: Components, out: Path) -> str:
    """What the models add to the run's fingerprint (a rerun with other models is refused); a fluency gate is
    written to ``out/fluency.json`` and fingerprinted too (only a gated run: ungated runs resume as before)."""
    models: list[Any] = [config.model, config.user_model, config.generator, config.judge_model, config.backend,
                         config.grounding]
    gate = getattr(parts.guard, "fluency", None)
    if gate is not None:
        models.append(gate.to_dict())
        (out / "fluency.json").write_text(json.dumps(gate.to_dict(), indent=1))
    return json.dumps(models)


def _finish(config: GenerateConfig, result: Any, parts: Components, ads: list, users: list,
            notes: dict[str, Any]) -> int:
    """The export, how segments' titles differ, the outputs (``summary.json`` once), the table and exit code."""
    from eval.metrics.user_fit import segment_title_differences

    out = Path(config.out)
    export = export_google_ads(result, parts, ads, config, out) if config.export == "google-ads" else None
    if export is not None:
        notes = {**notes, **export.summary()}
    by_id = {u.user_id: u for u in users}
    summary = result.summary.to_dict()
    summary["segment_titles"] = segment_title_differences(
        {(c.segment_id, c.ad_id): c.title for c in result.creatives}, result.user_segments, by_id)
    paths = write_outputs(result, out, config.output_format, per_user=config.per_user,
                          summary_extra={"segment_titles": summary["segment_titles"], **notes})
    if export is not None:
        paths["google_ads"] = export.path
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
