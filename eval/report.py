"""``hllm-creator eval``: compare systems side by side on the same (user, ad) pairs and write a report.

    hllm-creator eval --ads ../shared/data/amazon_office_products \\
        --systems sft=runs/sft/creatives.jsonl --systems clustered=runs/k64/creatives.jsonl \\
        --segments clustered=runs/k64/segments.jsonl --judge runs/reward --out runs/eval

Every system is a creatives file (JSONL/CSV/Parquet of ``Creative`` records keyed by ``user_id``,
or by ``segment_id`` plus a user -> segment table). The copy-the-original system ("original") is
always added. Writes ``report.json`` (every number), ``report.md``, a self-contained
``report.html`` (plots embedded as PNG) and ``resolved_config.yaml``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from creator.io import load_catalog
from creator.io.records import iter_rows
from creator.records.errors import Problems
from creator.records.types import Ad, User
from eval.breakdowns import per_group, side_by_side, user_map, worst_examples
from eval.config import EvalConfig, parse_named
from eval.metrics import (
    SCORER,
    Compliance,
    Diversity,
    Factuality,
    HistorySimilarity,
    HistorySimilarityJudge,
    ReferenceMetrics,
    bootstrap_ci,
    history_before,
    pairwise,
    segment_spread,
)
from eval.metrics.personalization import Judge
from eval.metrics.user_fit import segments_differ, swap_partner, user_fit
from eval.systems import Pair, System, check_ids, common_pairs, load_system, read_segments

logger = logging.getLogger(__name__)
ORIGINAL = "original"


def load_judge(spec: str | None, encoder: Any) -> Judge | None:
    """'similarity' -> the MiniLM proxy; a folder -> the trained CTR reward model; None -> no judge."""
    if not spec:
        return None
    if spec == "similarity":
        return HistorySimilarityJudge(encoder)
    if not Path(spec).is_dir():
        raise ValueError(
            f"--judge {spec!r} is neither 'similarity' nor a reward-model folder; "
            "pass the folder written by train-reward, or --judge similarity"
        )
    try:
        from creator.reward.model import RewardModel
    except ImportError as exc:
        raise RuntimeError(
            "--judge DIR needs creator.reward.model (the CTR reward model), which is not "
            "importable here; use --judge similarity or install the full package"
        ) from exc
    return RewardModel.from_pretrained(spec)


def fluency_gate(cfg: EvalConfig, scorer: Any, catalog: list[Ad]) -> Any:
    """The fluency gate the report measures with: ``scorer`` (or the LM ``cfg.fluency`` names) calibrated on the
    catalog's own titles at ``cfg.fluency_percentile``; None when fluency is not measured."""
    from creator.guard.fluency import FluencyScorer, calibrate, catalog_unigram, resolve_reference

    if isinstance(scorer, str):  # "config"
        reference = resolve_reference(cfg.fluency, flag="--fluency")
        scorer = None if reference is None else FluencyScorer.from_pretrained(reference)
    if scorer is None:
        return None
    unigram = catalog_unigram(scorer, catalog) if cfg.fluency_normalize == "unigram" else None
    return calibrate(scorer, [a.title for a in catalog], cfg.fluency_percentile, unigram=unigram)


def read_pairs(path: str | Path) -> list[Pair]:
    return [
        (str(r["user_id"]), str(r["ad_id"]))
        for _, r in iter_rows(path, Problems("fail"), required=("user_id", "ad_id"))
    ]


def read_references(path: str | Path | None, catalog_refs: list[dict[str, Any]]) -> dict[Pair, str]:
    """(user, ad) -> reference title from a records file (user_id, ad_id, title) or the catalog's own."""
    rows = catalog_refs
    if path:
        p = Path(path)
        if p.suffix == ".parquet" and "prompt1" in _parquet_columns(p):
            rows = load_catalog(p, "hllm").references
        else:
            rows = [r for _, r in iter_rows(p, Problems("fail"), required=("user_id", "ad_id", "title"))]
    return {(str(r["user_id"]), str(r["ad_id"])): str(r["title"]) for r in rows}


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def _ci(values: np.ndarray, cfg: EvalConfig) -> dict[str, Any]:
    return bootstrap_ci(values, n_resamples=cfg.bootstrap, seed=cfg.seed).to_dict()


def _user_fit(cfg: EvalConfig, encoder: Any, judge: Any, pairs: list[Pair], U: list[User], A: list[Ad],
              titles: list[str], originals: list[str], own_scores: np.ndarray | None,
              variants: list[list[str]]) -> dict[str, Any]:
    """Own title vs a swapped one (another user's title of the same ad): future fit, history fit, judge."""
    scores = None
    if judge is not None and own_scores is not None:
        partner = swap_partner(pairs, titles, seed=cfg.seed)  # the same draw user_fit makes
        swapped = [titles[j] if j >= 0 else titles[i] for i, j in enumerate(partner)]
        scores = (own_scores, np.asarray(judge.score(U, swapped, A), dtype=float))
    fit = user_fit(encoder, pairs, U, titles, originals, n_future=1, seed=cfg.seed, judge_scores=scores,
                   margin=cfg.judge_margin)
    out: dict[str, Any] = {k: _ci(v, cfg) for k, v in fit.items() if k != "swapped_titles"}
    out["swap_partners"] = int(np.isfinite(fit["history_fit_own_minus_swapped"]).sum())
    out["segments_differ"] = segments_differ(variants)
    return {"user_fit": out}


def evaluate(
    cfg: EvalConfig,
    *,
    encoder: Any = None,
    checker: Any = None,
    attribute_checker: Any = "guard",
    judge: Any = "config",
    fluency: Any = "config",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every metric. Returns (report, arrays): the JSON-able report and per-pair arrays for plots.

    ``encoder``/``checker``/``attribute_checker``/``judge`` default to MiniLM, the serving guard and
    the judge named in the config; tests pass small stand-ins to isolate this unit. ``fluency`` defaults to
    the reference LM named by ``cfg.fluency`` (a ``creator.guard.fluency.FluencyScorer``; None: not measured).
    """
    if encoder is None:
        from creator.modeling.item_encoder import SentenceItemEncoder

        # Titles and histories repeat across systems and metrics: the on-disk cache embeds each once.
        encoder = SentenceItemEncoder(cfg.encoder, cache_dir=cfg.cache_dir or Path(cfg.out) / "cache")
    if isinstance(judge, str):  # "config": the judge named by cfg.judge
        judge = load_judge(cfg.judge, encoder)
    ads_cat = load_catalog(cfg.ads, cfg.format).require_ads()
    users_cat = ads_cat if not cfg.users or cfg.users == cfg.ads else load_catalog(cfg.users, cfg.format)
    ads, users = ads_cat.ads, users_cat.users

    tables = {p: read_segments(p) for p in {cfg.segment_table(n) for n in cfg.systems} if p}
    systems: list[System] = []
    for name, path in cfg.systems.items():
        table = cfg.segment_table(name)
        system = load_system(name, path, segments=tables[table] if table else None)
        check_ids(system, ads, users)
        systems.append(system)
    pairs, coverage = common_pairs(systems, read_pairs(cfg.pairs) if cfg.pairs else None)
    total_pairs = len(pairs)
    if cfg.max_pairs and len(pairs) > cfg.max_pairs:
        keep = np.random.default_rng(cfg.seed).choice(len(pairs), size=cfg.max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    U: list[User] = [users[u] for u, _ in pairs]
    A: list[Ad] = [ads[a] for _, a in pairs]
    originals = [a.title for a in A]
    titles: dict[str, list[str]] = {ORIGINAL: originals}
    by_name = {s.name: s for s in systems}
    for s in systems:
        titles[s.name] = [s.titles[p] for p in pairs]
    names = list(titles)
    ad_ids = sorted({a for _, a in pairs})
    calls = {n: float(cfg.calls.get(n, by_name[n].calls if n in by_name else 0)) for n in names}
    logger.info(
        "evaluating %d systems on %d pairs (%d users, %d ads)",
        len(names),
        len(pairs),
        len({u for u, _ in pairs}),
        len(ad_ids),
    )

    factuality = Factuality(checker) if checker is not None else Factuality(catalog=list(ads.values()))
    compliance = Compliance(
        cfg.channels,
        cfg.banned_words,
        **({} if isinstance(attribute_checker, str) else {"attribute_checker": attribute_checker}),
    )
    similarity = HistorySimilarity(encoder)
    diversity = Diversity(seed=cfg.seed)
    references = read_references(cfg.references, ads_cat.references or users_cat.references)
    ref_idx = [i for i, p in enumerate(pairs) if p in references]
    profiles = similarity.profiles([history_before(u, a.ad_id) for u, a in zip(U, A, strict=True)])
    sim_original = similarity.similarity(originals, profiles)

    arrays: dict[str, Any] = {"pairs": pairs, "titles": titles, "judge": {}, "sim_lift": {}}
    results: dict[str, dict[str, Any]] = {}
    judge_scores: dict[str, np.ndarray] = {}
    if judge is not None:
        for n in names:
            judge_scores[n] = np.asarray(judge.score(U, titles[n], A), dtype=float)
    gate = fluency_gate(cfg, fluency, list(ads.values()))
    worst: list[dict[str, Any]] = []
    sheet: dict[str, Any] = {}
    sheet_users = ({line.strip() for line in Path(cfg.sheet_users).read_text().splitlines() if line.strip()}
                   if cfg.sheet_users else None)
    for n in names:
        logger.info("scoring system %s", n)
        t = titles[n]
        fact = factuality(t, A, originals)
        comp = compliance(t, A)
        lift = similarity.similarity(t, profiles) - sim_original  # 0 for the original, NaN without history
        variants = (
            [[ads[a].title] for a in ad_ids]
            if n == ORIGINAL
            else [by_name[n].variants.get(a, []) for a in ad_ids]
        )
        div = diversity(variants)
        spread = segment_spread(variants, encoder)
        r: dict[str, Any] = {
            "calls": calls[n],
            "factual_error_rate": _ci(fact.flags, cfg),
            "fact_failures_by_rule": fact.by_rule,
            "checker": fact.checker,
            "compliant": _ci(comp.compliant, cfg),
            "compliance": comp.to_dict(),
            "similarity_lift": _ci(lift, cfg),
            "diversity": div.to_dict(),
            "segment_spread": float(np.nanmean(spread)) if np.isfinite(spread).any() else float("nan"),
            "changed_vs_original": float(np.mean([a != b for a, b in zip(t, originals, strict=True)])),
        }
        if gate is not None:  # mean NLL per token under the reference LM, and the share the gate passes
            nll = gate.scorer.score(t)
            r["fluency_nll"] = _ci(nll, cfg)
            r["fluency_pass"] = _ci(np.array([gate.passes(v) for v in gate.values(t)], dtype=float), cfg)
        if n != ORIGINAL:
            r.update(_user_fit(cfg, encoder, judge, pairs, U, A, t, originals, judge_scores.get(n), variants))
        if judge is not None:
            s = judge_scores[n]
            r["judge_score"] = _ci(s, cfg)
            r["judge_lift"] = _ci(s - judge_scores[ORIGINAL], cfg)
            if n != ORIGINAL:
                pw = pairwise(
                    judge, U, t, originals, A, margin=cfg.judge_margin, scores=(s, judge_scores[ORIGINAL])
                )
                r["adv_vs_original"] = {**pw.to_dict(), "ci": _ci(pw.per_pair.astype(float), cfg)}
        if ref_idx:
            r["reference"] = ReferenceMetrics()(
                [t[i] for i in ref_idx],
                [originals[i] for i in ref_idx],
                [references[pairs[i]] for i in ref_idx],
            )
        results[n] = r
        arrays["sim_lift"][n] = lift
        if judge is not None:
            arrays["judge"][n] = judge_scores[n]
        if n != ORIGINAL:
            worst += worst_examples(n, pairs, t, originals, fact, comp, lift, judge_scores, cfg.worst_k)
            if cfg.sheet_pairs:
                sheet[n] = side_by_side(n, pairs, t, originals, fact, judge_scores, cfg.sheet_pairs, cfg.seed,
                                        sheet_users)

    report: dict[str, Any] = {
        "n_pairs": len(pairs),
        "n_pairs_shared": total_pairs,
        "n_users": len({u for u, _ in pairs}),
        "n_ads": len(ad_ids),
        "coverage": coverage,
        "judge": None if judge is None else getattr(judge, "name", type(judge).__name__),
        "fluency": None if gate is None else gate.to_dict(),
        "rouge_scorer": SCORER if ref_idx else None,
        "n_reference_pairs": len(ref_idx),
        "systems": results,
        "per_group": per_group(cfg, A, names, judge_scores, arrays["sim_lift"]),
        "worst": worst,
        "side_by_side": sheet,
        "config": cfg.to_dict(),
    }
    if judge is not None and len(names) > 2:
        # Adv(b, a) = -Adv(a, b) (Good and Bad swap), so each unordered pair is judged once.
        matrix: dict[str, dict[str, float]] = {a: {} for a in names}
        for ia, a in enumerate(names):
            for b in names[ia + 1 :]:
                adv = pairwise(
                    judge,
                    U,
                    titles[a],
                    titles[b],
                    A,
                    margin=cfg.judge_margin,
                    scores=(judge_scores[a], judge_scores[b]),
                ).adv
                matrix[a][b], matrix[b][a] = adv, -adv
        report["adv_matrix"] = matrix
    arrays["segments"] = user_map(cfg, systems, tables, U, encoder)
    return report, arrays


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hllm-creator eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  hllm-creator eval --ads ../shared/data/amazon_office_products \\\n"
        "    --systems brand=runs/base/brand.jsonl --systems k8=runs/base/k8.jsonl \\\n"
        "    --segments k8=runs/base/segments.jsonl --judge similarity --out runs/eval",
    )
    p.add_argument("--config", help="YAML with EvalConfig fields; flags override it")
    p.add_argument("--systems", action="append", metavar="NAME=PATH", help="a creatives file (repeat)")
    p.add_argument("--ads", help="catalog with the ads (any format load_catalog reads)")
    p.add_argument("--users", help="catalog with the users (default: --ads)")
    p.add_argument("--out", help="output folder (default runs/eval)")
    p.add_argument("--format", help="format of --ads/--users (default auto)")
    p.add_argument(
        "--segments",
        action="append",
        metavar="NAME=PATH",
        help="user_id,segment_id table for a segment-keyed system ('*=PATH' for all)",
    )
    p.add_argument("--pairs", help="evaluate only these (user_id, ad_id) rows")
    p.add_argument(
        "--references", help="reference titles: user_id,ad_id,title rows or an HLLM-Creator parquet"
    )
    p.add_argument("--judge", help="'similarity' (MiniLM proxy) or a reward-model folder")
    p.add_argument("--judge-margin", type=float, dest="judge_margin")
    p.add_argument(
        "--channels", nargs="+", help="length rules, first is primary: headline, title, name:CHARS[:WORDS]"
    )
    p.add_argument("--channel", help="a channel preset made primary: google-rsa-headline, google-rsa-description, "
                   "meta-headline, merchant-title or generic")
    p.add_argument(
        "--banned-words", nargs="+", dest="banned_words", help="words or phrases a title must not use"
    )
    p.add_argument(
        "--calls", action="append", metavar="NAME=N", help="generation calls of a system (override)"
    )
    p.add_argument("--max-pairs", type=int, dest="max_pairs", help="sample this many pairs (0 = all)")
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int)
    p.add_argument("--worst-k", type=int, dest="worst_k")
    p.add_argument("--sheet-pairs", type=int, dest="sheet_pairs", help="side-by-side pairs per system (default 30)")
    p.add_argument("--sheet-users", dest="sheet_users", help="draw them from these user ids (file, one a line)")
    p.add_argument("--group-by", choices=("category", "brand"), dest="group_by")
    p.add_argument("--cache-dir", dest="cache_dir", help="embedding cache folder")
    p.add_argument("--fluency", help="measure fluency under this reference LM: auto, gemma-270m or an LM folder "
                   "(docs/fluency.md)")
    p.add_argument("--fluency-percentile", type=float, dest="fluency_percentile",
                   help="the gate's threshold: this percentile of the catalog titles' NLL (default 95)")
    p.add_argument("--fluency-normalize", choices=("none", "unigram"), dest="fluency_normalize",
                   help="the gate's statistic: NLL in excess of the catalog's word frequencies (unigram, default) "
                        "or the raw NLL (none)")
    return p


def config_from_args(argv: list[str] | None) -> EvalConfig:
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        import yaml

        values = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
    for key, v in vars(args).items():
        if key == "config" or v is None:
            continue
        if key in ("systems", "segments"):
            values[key] = {**values.get(key, {}), **parse_named(v, f"--{key}")}
        elif key == "calls":
            values[key] = {**values.get(key, {}), **parse_named(v, "--calls", number=True)}
        elif key == "max_pairs":
            values[key] = v or None
        else:
            values[key] = v
    return EvalConfig(**values)


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = config_from_args(argv)
    except (ValueError, TypeError) as err:
        print(f"error: {err}")
        return 2
    from eval.render import headline_rows, markdown_table, write_report

    report, arrays = evaluate(cfg)
    out = Path(cfg.out)
    paths = write_report(report, arrays, out)
    cfg.write(out / "resolved_config.yaml")
    print(markdown_table(*headline_rows(report)))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
