"""``hllm-creator eval``: compare systems side by side on the same (user, ad) pairs and write a report.

    hllm-creator eval --ads ../shared/data/amazon_office_products \\
        --systems sft=runs/sft/creatives.jsonl --systems clustered=runs/k64/creatives.jsonl \\
        --segments clustered=runs/k64/segments.jsonl --judge runs/reward --out runs/eval
    hllm-creator eval --config eval/configs/eval.yaml

Every system is a creatives file (JSONL/CSV/Parquet of ``Creative`` records keyed by ``user_id``,
or by ``segment_id`` plus a user -> segment table). The copy-the-original system ("original") is
always added. Writes ``report.json`` (every number), ``report.md``, a self-contained
``report.html`` (plots embedded as PNG) and ``resolved_config.yaml``.

``main(argv)`` parses the options (``EvalConfig``: defaults -> ``--config`` -> flags) and calls ``run``;
Python callers build an ``EvalConfig`` and call ``evaluate`` (the numbers) or ``run`` (numbers and files).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creator.config import run_verb
from creator.records.types import Ad, User
from eval.breakdowns import per_group, side_by_side, user_map, worst_examples
from eval.config import EvalConfig
from eval.inputs import ORIGINAL, EvalSet, load_eval_set, read_references
from eval.judge import load_reward_model
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
from eval.systems import Pair

logger = logging.getLogger(__name__)
__all__ = ["ORIGINAL", "evaluate", "fluency_gate", "load_judge", "main", "parse_config", "run"]

EXAMPLE = """example:
  hllm-creator eval --ads ../shared/data/amazon_office_products \\
    --systems brand=runs/base/brand.jsonl --systems k8=runs/base/k8.jsonl \\
    --segments k8=runs/base/segments.jsonl --judge similarity --out runs/eval
  hllm-creator eval --config eval/configs/eval.yaml --out runs/eval_again"""


def load_judge(spec: str | None, encoder: Any) -> Judge | None:
    """'similarity' -> the MiniLM proxy; a folder -> the trained CTR reward model (a ``train-reward`` folder or
    a model bundle); None -> no judge."""
    if not spec:
        return None
    if spec == "similarity":
        return HistorySimilarityJudge(encoder)
    if not Path(spec).is_dir():
        raise ValueError(
            f"--judge {spec!r} is neither 'similarity' nor a folder; pass the folder written by train-reward, "
            "a model bundle (quickstart's OUT/artifacts), or --judge similarity"
        )
    return load_reward_model(spec, flag="--judge")


def fluency_gate(cfg: EvalConfig, scorer: Any, catalog: list[Ad]) -> Any:
    """The fluency gate the report measures with: ``scorer`` (or the LM ``cfg.fluency`` names) calibrated on the
    catalog's own titles at ``cfg.fluency_percentile``; None when fluency is not measured."""
    from creator.modeling.fluency import FluencyScorer, calibrate, catalog_unigram, resolve_reference

    if isinstance(scorer, str):  # "config"
        reference = resolve_reference(cfg.fluency, flag="--fluency")
        scorer = None if reference is None else FluencyScorer.from_pretrained(reference)
    if scorer is None:
        return None
    unigram = catalog_unigram(scorer, catalog) if cfg.fluency_normalize == "unigram" else None
    return calibrate(scorer, [a.title for a in catalog], cfg.fluency_percentile, unigram=unigram)


def _ci(values: np.ndarray, cfg: EvalConfig) -> dict[str, Any]:
    return bootstrap_ci(values, n_resamples=cfg.bootstrap, seed=cfg.seed).to_dict()


@dataclass
class Scorers:
    """The metrics every system goes through, set up once for the pairs of an ``EvalSet``."""

    encoder: Any
    judge: Any
    factuality: Factuality
    compliance: Compliance
    similarity: HistorySimilarity
    diversity: Diversity
    references: dict[Pair, str]
    ref_idx: list[int]  # the pairs that have a reference title
    sim_original: np.ndarray  # history similarity of the original titles, per pair
    profiles: np.ndarray  # each pair's user history profile (before the ad)
    judge_scores: dict[str, np.ndarray]  # system -> the judge's score per pair (empty without a judge)
    gate: Any  # the fluency gate, or None
    sheet_users: set[str] | None


def build_scorers(cfg: EvalConfig, data: EvalSet, encoder: Any, judge: Any, checker: Any,
                  attribute_checker: Any, fluency: Any) -> Scorers:
    ads = data.ads_by_id
    factuality = Factuality(checker) if checker is not None else Factuality(catalog=list(ads.values()))
    compliance = Compliance(
        cfg.channels,
        cfg.banned_words,
        **({} if isinstance(attribute_checker, str) else {"attribute_checker": attribute_checker}),
    )
    similarity = HistorySimilarity(encoder)
    diversity = Diversity(seed=cfg.seed)
    references = read_references(cfg.references, data.ads_catalog.references or data.users_catalog.references)
    ref_idx = [i for i, p in enumerate(data.pairs) if p in references]
    U, A = data.users, data.ads
    profiles = similarity.profiles([history_before(u, a.ad_id) for u, a in zip(U, A, strict=True)])
    sim_original = similarity.similarity(data.originals, profiles)
    judge_scores: dict[str, np.ndarray] = {}
    if judge is not None:
        for n in data.names:
            judge_scores[n] = np.asarray(judge.score(U, data.titles[n], A), dtype=float)
    gate = fluency_gate(cfg, fluency, list(ads.values()))
    sheet_users = ({line.strip() for line in Path(cfg.sheet_users).read_text().splitlines() if line.strip()}
                   if cfg.sheet_users else None)
    return Scorers(encoder, judge, factuality, compliance, similarity, diversity, references, ref_idx,
                   sim_original, profiles, judge_scores, gate, sheet_users)


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


@dataclass
class SystemScores:
    """One system's section of the report, and what the plots and the example lists need from it."""

    report: dict[str, Any]
    lift: np.ndarray  # history-similarity lift per pair
    fact: Any  # eval.metrics.factuality result (per-pair flags, failures)
    comp: Any  # eval.metrics.compliance result


def score_system(cfg: EvalConfig, data: EvalSet, sc: Scorers, n: str) -> SystemScores:
    """Every metric of system ``n`` on the pairs of ``data``: the report's ``systems[n]`` section."""
    logger.info("scoring system %s", n)
    t, originals, U, A = data.titles[n], data.originals, data.users, data.ads
    fact = sc.factuality(t, A, originals)
    comp = sc.compliance(t, A)
    lift = sc.similarity.similarity(t, sc.profiles) - sc.sim_original  # 0 for the original, NaN without history
    variants = data.variants(n)
    div = sc.diversity(variants)
    spread = segment_spread(variants, sc.encoder)
    r: dict[str, Any] = {
        "calls": data.calls[n],
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
    if sc.gate is not None:  # mean NLL per token under the reference LM, and the share the gate passes
        nll = sc.gate.scorer.score(t)
        r["fluency_nll"] = _ci(nll, cfg)
        r["fluency_pass"] = _ci(np.array([sc.gate.passes(v) for v in sc.gate.values(t)], dtype=float), cfg)
    if n != ORIGINAL:
        r.update(_user_fit(cfg, sc.encoder, sc.judge, data.pairs, U, A, t, originals, sc.judge_scores.get(n),
                           variants))
    if sc.judge is not None:
        r.update(_judged(cfg, data, sc, n))
    if sc.ref_idx:
        r["reference"] = ReferenceMetrics()(
            [t[i] for i in sc.ref_idx],
            [originals[i] for i in sc.ref_idx],
            [sc.references[data.pairs[i]] for i in sc.ref_idx],
        )
    return SystemScores(r, lift, fact, comp)


def _judged(cfg: EvalConfig, data: EvalSet, sc: Scorers, n: str) -> dict[str, Any]:
    """The judge's score, its lift over the original title and (for a system) Adv vs the original."""
    s = sc.judge_scores[n]
    r: dict[str, Any] = {"judge_score": _ci(s, cfg), "judge_lift": _ci(s - sc.judge_scores[ORIGINAL], cfg)}
    if n != ORIGINAL:
        pw = pairwise(sc.judge, data.users, data.titles[n], data.originals, data.ads, margin=cfg.judge_margin,
                      scores=(s, sc.judge_scores[ORIGINAL]))
        r["adv_vs_original"] = {**pw.to_dict(), "ci": _ci(pw.per_pair.astype(float), cfg)}
    return r


def adv_matrix(cfg: EvalConfig, data: EvalSet, sc: Scorers) -> dict[str, dict[str, float]]:
    """Adv of every system against every other. Adv(b, a) = -Adv(a, b) (Good and Bad swap), so each unordered
    pair is judged once."""
    names = data.names
    matrix: dict[str, dict[str, float]] = {a: {} for a in names}
    for ia, a in enumerate(names):
        for b in names[ia + 1 :]:
            adv = pairwise(
                sc.judge,
                data.users,
                data.titles[a],
                data.titles[b],
                data.ads,
                margin=cfg.judge_margin,
                scores=(sc.judge_scores[a], sc.judge_scores[b]),
            ).adv
            matrix[a][b], matrix[b][a] = adv, -adv
    return matrix


def _default_encoder(cfg: EvalConfig) -> Any:
    from creator.modeling.item_encoder import SentenceItemEncoder

    # Titles and histories repeat across systems and metrics: the on-disk cache embeds each once.
    return SentenceItemEncoder(cfg.encoder, cache_dir=cfg.cache_dir or Path(cfg.out) / "cache")


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
    the reference LM named by ``cfg.fluency`` (a ``creator.modeling.fluency.FluencyScorer``; None: not measured).
    """
    if encoder is None:
        encoder = _default_encoder(cfg)
    if isinstance(judge, str):  # "config": the judge named by cfg.judge
        judge = load_judge(cfg.judge, encoder)
    data = load_eval_set(cfg)
    sc = build_scorers(cfg, data, encoder, judge, checker, attribute_checker, fluency)
    arrays: dict[str, Any] = {"pairs": data.pairs, "titles": data.titles, "judge": {}, "sim_lift": {}}
    results: dict[str, dict[str, Any]] = {}
    worst: list[dict[str, Any]] = []
    sheet: dict[str, Any] = {}
    for n in data.names:
        scored = score_system(cfg, data, sc, n)
        results[n] = scored.report
        arrays["sim_lift"][n] = scored.lift
        if judge is not None:
            arrays["judge"][n] = sc.judge_scores[n]
        if n != ORIGINAL:
            worst += _examples(cfg, data, sc, n, scored, sheet)
    report = _report(cfg, data, sc, results, worst, sheet, arrays["sim_lift"])
    if judge is not None and len(data.names) > 2:
        report["adv_matrix"] = adv_matrix(cfg, data, sc)
    arrays["segments"] = user_map(cfg, data.systems, data.tables, data.users, encoder)
    return report, arrays


def _examples(cfg: EvalConfig, data: EvalSet, sc: Scorers, n: str, scored: SystemScores,
              sheet: dict[str, Any]) -> list[dict[str, Any]]:
    """System ``n``'s worst examples; its side-by-side sheet goes into ``sheet``."""
    t, originals = data.titles[n], data.originals
    worst = worst_examples(n, data.pairs, t, originals, scored.fact, scored.comp, scored.lift, sc.judge_scores,
                           cfg.worst_k)
    if cfg.sheet_pairs:
        sheet[n] = side_by_side(n, data.pairs, t, originals, scored.fact, sc.judge_scores, cfg.sheet_pairs,
                                cfg.seed, sc.sheet_users)
    return worst


def _report(cfg: EvalConfig, data: EvalSet, sc: Scorers, results: dict[str, dict[str, Any]],
            worst: list[dict[str, Any]], sheet: dict[str, Any], sim_lift: dict[str, np.ndarray]) -> dict[str, Any]:
    pairs = data.pairs
    return {
        "n_pairs": len(pairs),
        "n_pairs_shared": data.total_pairs,
        "n_users": len({u for u, _ in pairs}),
        "n_ads": len(data.ad_ids),
        "coverage": data.coverage,
        "judge": None if sc.judge is None else getattr(sc.judge, "name", type(sc.judge).__name__),
        "fluency": None if sc.gate is None else sc.gate.to_dict(),
        "rouge_scorer": SCORER if sc.ref_idx else None,
        "n_reference_pairs": len(sc.ref_idx),
        "systems": results,
        "per_group": per_group(cfg, data.ads, data.names, sc.judge_scores, sim_lift),
        "worst": worst,
        "side_by_side": sheet,
        "config": cfg.to_dict(),
    }


def parse_config(argv: Sequence[str] | None = None) -> EvalConfig:
    """``EvalConfig`` from defaults, then ``--config YAML``, then the flags in ``argv``."""
    from creator.config import parse

    (cfg,) = parse([EvalConfig], argv, description=__doc__.split("\n\n")[0], epilog=EXAMPLE)
    return cfg


def run(cfg: EvalConfig) -> list[Path]:
    """Evaluate, write the report and the resolved config to ``cfg.out``, print the headline table."""
    from creator.config import save_resolved
    from eval.render import headline_rows, markdown_table, write_report

    report, arrays = evaluate(cfg)
    out = Path(cfg.out)
    paths = write_report(report, arrays, out)
    save_resolved(out / "resolved_config.yaml", cfg)
    print(markdown_table(*headline_rows(report)))
    print("wrote " + ", ".join(str(p) for p in paths))
    return paths


def main(argv: list[str] | None = None) -> int:
    return run_verb(parse_config, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
