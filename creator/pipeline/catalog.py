"""Personalised titles for a whole catalog at the cost of segments, not users.

The flow, one named step per stage of ``generate_for_catalog`` (``_inputs``, ``_plan``, ``_generate``,
``_assemble``)::

    users -> user vectors -> k-means segments -> match score of every (segment, ad)
          -> select (threshold, top-m ads per segment, top-k segments per ad, call budget)
          -> prompt embeddings per kept pair
          -> n candidates per pair -> guard each -> best survivor by the judge
          -> original title where the pair was pruned, fallback where nothing passed
             (under a platform channel, ``PipelineConfig.channel``, the fallback and the pruned pairs' title
             must pass the channel's guard too: original, else a shortened title, ``creator.channels.shortening``)
          -> segments mapped back to users

Generator calls scale with (segments x kept ads), never with users. Every model is injected
(``Components``) so the flow is tested with small fakes; ``creator.bundle`` builds the trained ones. What a
run returns and writes (``CatalogResult``, ``RunSummary``, ``write_outputs``) lives in ``creator.pipeline.result``;
it is re-exported here. Work is sharded by kept pairs and, given ``out_dir``, each shard's rows
(``ShardRow``) are saved as it finishes (``creator.pipeline.shards``): a rerun after a crash reads finished
shards back and ends with the same output.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from creator.backends.base import GenerationBackend, GenerationRequest, SamplingConfig
from creator.decoding.words import AdVocabulary
from creator.pipeline.result import (  # noqa: F401
    CatalogResult,
    RunSummary,
    count_rows,
    record_coverage,
    write_outputs,
)
from creator.pipeline.shards import ShardRow, ShardStore
from creator.records.types import Ad, Creative, GuardVerdict, User
from creator.segments.clustering import cluster_users, one_segment_per_user
from creator.segments.matching import select_with_budget

logger = logging.getLogger(__name__)


class UserVectorModel(Protocol):
    """What the pipeline needs from ``creator.modeling.user_model.UserModel``: user and ad vectors, and the
    match head's calibrated probability of every (user vector, ad vector) pair."""

    def embed_users(self, users: list[User], *, batch_size: int = 256,
                    progress: bool = False) -> np.ndarray: ...

    def embed_items(self, texts: list[str]) -> np.ndarray: ...

    def match(self, user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray: ...


class TitleGenerator(Protocol):
    """What the pipeline needs from ``creator.modeling.generator.PersonalizedGenerator``: the prompt of one
    (ad, user vector) as input embeddings, and the words its titles may use (None: open decoding)."""

    def prompt_embeds(self, ad: Ad, user_vec: np.ndarray) -> torch.Tensor: ...

    def grounding(self, ad: Ad, *, max_chars: int | None = None, wide: bool = False) -> AdVocabulary | None: ...


class TitleGuard(Protocol):
    """``creator.guard.check.Guard``: hard constraints and fact grounding of one title against its ad."""

    def check(self, title: str, ad: Ad, *, original_title: str | None = None) -> GuardVerdict: ...


class TitleJudge(Protocol):
    """``eval.judge.Judge`` / ``creator.reward.model.RewardModel``: click probability of users[i] with titles[i]."""

    def score(self, users: list[User], titles: list[str], ads: list[Ad] | None = None) -> np.ndarray: ...


def ad_title(ad: Ad) -> str:
    return ad.title


@dataclass
class Components:
    """The trained parts, each once: the user model (vectors and match), the generator (prompts and grounded
    vocabularies) with the backend that decodes its requests, the guard and the optional judge (without one the
    first candidate that passes the guard wins). ``decode_chars``: the character budget grounded decoding
    keeps titles within (a channel's, ``Channel.budget``; None: unbounded), counting double-width characters
    twice where the ``PipelineConfig.channel`` says so. ``creator.bundle.ModelBundle`` builds these from an
    artefact folder."""

    user_model: UserVectorModel
    generator: TitleGenerator
    backend: GenerationBackend
    guard: TitleGuard
    judge: TitleJudge | None = None
    decode_chars: int | None = None
    ad_text: Callable[[Ad], str] = ad_title  # the text the user model embeds for an ad
    # the generator's own user vectors when it was trained on another space than the user model's (a pretrained
    # adapter on mean MiniLM history vectors): users -> (N, d); None: the segments' user-model representatives
    generator_vectors: Callable[[list[User]], np.ndarray] | None = None


@dataclass
class PipelineConfig:
    """Segmenting and pruning. ``clusters=None`` uses the size rule ``clustering.auto_clusters``;
    ``per_user=True`` makes every user its own segment (the per-user baseline: no k-means).
    ``ad_top_k`` also keeps each ad's k best-matching segments (catalog coverage); ``max_calls`` caps the
    kept pairs (generator requests), allotted as ``creator.segments.matching.select_with_budget`` says."""

    clusters: int | None = None
    representative: str = "centroid"
    match_threshold: float | None = None
    top_m: int | None = None
    shard_size: int = 256
    user_batch_size: int = 256
    per_user: bool = False
    # the channel the titles are for (``creator.channels.presets``); ``generic`` serves fallbacks as before. The guard
    # (``GuardConfig.for_channel``) and ``Components.decode_chars`` should be set for the same channel
    channel: str = "generic"
    ad_top_k: int | None = None
    max_calls: int | None = None

    def __post_init__(self) -> None:
        from creator.channels.presets import get_channel

        get_channel(self.channel)  # an unknown name: one line that lists the presets
        if self.per_user and self.clusters is not None:
            raise ValueError(f"per_user=True gives every user its own segment; leave clusters unset "
                             f"(got clusters={self.clusters})")
        if self.clusters is not None and self.clusters < 1:
            raise ValueError(f"clusters must be >= 1 (or None for the size rule), got {self.clusters}")
        if self.representative not in ("centroid", "medoid"):
            raise ValueError(f"representative must be 'centroid' or 'medoid', got {self.representative!r}")
        if self.match_threshold is not None and not 0.0 <= self.match_threshold <= 1.0:
            raise ValueError(f"match_threshold is a probability in [0, 1], got {self.match_threshold}; "
                             "leave it unset to keep every pair")
        if self.top_m is not None and self.top_m < 1:
            raise ValueError(f"top_m must be >= 1 (or None to disable), got {self.top_m}")
        if self.ad_top_k is not None and self.ad_top_k < 1:
            raise ValueError(f"ad_top_k must be >= 1 (or None to disable), got {self.ad_top_k}")
        if self.max_calls is not None and self.max_calls < 1:
            raise ValueError(f"max_calls must be >= 1 (or None for no budget), got {self.max_calls}")
        if self.shard_size < 1 or self.user_batch_size < 1:
            raise ValueError("shard_size and user_batch_size must be >= 1")


def select_pairs(scores: np.ndarray, *, threshold: float | None, top_m: int | None, ad_top_k: int | None = None,
                 max_calls: int | None = None, live: np.ndarray | None = None) -> np.ndarray:
    """Keep-mask over (segment, ad): score >= threshold AND (ad rank < top_m in its segment OR segment rank <
    ad_top_k for its ad), then at most ``max_calls`` pairs; see ``creator.segments.matching.select_with_budget``."""
    return select_with_budget(scores, threshold=threshold, top_m=top_m, ad_top_k=ad_top_k, max_calls=max_calls,
                              live=live)


def _check_unique(items: list[Any], key: str) -> None:
    """Ids must be unique: the catalog readers reject (and count) duplicate rows, so one here is a caller's bug."""
    counts = Counter(getattr(x, key) for x in items)
    extra = sum(n - 1 for n in counts.values())
    if extra:
        repeated = sorted(k for k, n in counts.items() if n > 1)
        raise ValueError(f"{extra} duplicate {key}s in the input (e.g. {repeated[:5]}); "
                         "pass each once (creator.io.load_catalog keeps the first row of an id and rejects the others)")


def fingerprint(ads: list[Ad], users: list[User], config: PipelineConfig, sampling: SamplingConfig,
                extra: str = "") -> str:
    """A hash of all that decides the output: settings, ad texts, user histories, models (``extra``)."""
    settings = {k: v for k, v in asdict(config).items()
                if not (k in ("ad_top_k", "max_calls") and v is None)}  # runs from before these resume
    h = hashlib.sha256(json.dumps([settings, asdict(sampling), extra], sort_keys=True).encode())
    for ad in ads:
        h.update(json.dumps(ad.to_dict(), sort_keys=True).encode())
    for user in users:
        h.update(json.dumps([user.user_id, user.history_titles]).encode())
    return h.hexdigest()[:16]


def generate_for_catalog(ads: list[Ad], users: list[User], parts: Components,
                         config: PipelineConfig | None = None, sampling: SamplingConfig | None = None, *,
                         out_dir: str | Path | None = None, fingerprint_extra: str = "",
                         progress: bool = False) -> CatalogResult:
    """Run the whole flow (see the module docstring); with ``out_dir`` it is resumable."""
    config = config or PipelineConfig()
    sampling = sampling or SamplingConfig()
    summary = RunSummary()
    clock = _Clock(summary)
    ads, users = _inputs(ads, users, summary)  # 1. inputs
    store = None
    if out_dir is not None:
        store = ShardStore(out_dir, fingerprint=fingerprint(ads, users, config, sampling, fingerprint_extra))
    plan = _plan(ads, users, parts, config, sampling, store, clock, progress)  # 2. plan
    sizes, keep, scores = plan["sizes"], plan["keep"], plan["scores"]
    live = np.flatnonzero(sizes > 0)
    summary.segments, summary.empty_segments = len(live), int((sizes == 0).sum())
    summary.pairs_considered = len(live) * len(ads)
    pairs = [(int(k), int(m)) for k, m in np.argwhere(keep)]  # segment-major, then ad order
    summary.pairs_pruned = summary.pairs_considered - len(pairs)
    rows = _generate(pairs, ads, users, plan, parts, config, sampling, store, summary, clock, progress)  # 3.
    fallback = _fallbacks(ads, parts, config)  # 4. assemble
    creatives = _assemble(live, ads, scores, rows, fallback, summary)
    count_rows(summary, rows, fallback)
    record_coverage(summary, ads, rows, keep, config.max_calls)
    user_segments = {u.user_id: int(plan["labels"][i]) for i, u in enumerate(users)}
    clock.lap("assemble")
    alternates = {(int(r.segment_id), r.ad_id): [c for c, rules in zip(r.candidates, r.failed_rules, strict=True)
                                                 if not rules and c != r.title] for r in rows}
    return CatalogResult(creatives=creatives, user_segments=user_segments, summary=summary, scores=scores,
                         keep=keep, ad_ids=[a.ad_id for a in ads], alternates=alternates)


class _Clock:
    """Seconds per stage, added up in ``summary.seconds`` (a stage run once per shard sums over the shards)."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary, self.start = summary, time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        seconds = self.summary.seconds
        seconds[stage] = round(seconds.get(stage, 0.0) + now - self.start, 3)
        self.start = now


def _inputs(ads: list[Ad], users: list[User], summary: RunSummary) -> tuple[list[Ad], list[User]]:
    """Ids must be unique; cold-start users and bare ads are counted, not dropped."""
    _check_unique(ads, "ad_id")
    _check_unique(users, "user_id")
    ads, users = list(ads), list(users)
    if not ads or not users:
        raise ValueError(f"nothing to generate for: {len(ads)} ads and {len(users)} users; "
                         "check the --ads and --users inputs")
    summary.users, summary.ads = len(users), len(ads)
    summary.cold_start_users = sum(1 for u in users if not u.history)
    summary.ads_without_selling_points = sum(1 for a in ads if not a.selling_points)
    return ads, users


def _plan(ads: list[Ad], users: list[User], parts: Components, config: PipelineConfig, sampling: SamplingConfig,
          store: ShardStore | None, clock: _Clock, progress: bool) -> dict[str, np.ndarray]:
    """User vectors -> segments -> match scores -> kept pairs, frozen on disk for reruns (a rerun loads it)."""
    loaded = store.load_plan() if store else None
    if loaded is not None:
        return loaded[0]
    vecs = parts.user_model.embed_users(users, batch_size=config.user_batch_size, progress=progress)
    clock.lap("embed_users")
    seg = one_segment_per_user(vecs) if config.per_user else \
        cluster_users(vecs, config.clusters, seed=sampling.seed, representative=config.representative)
    clock.lap("cluster")
    ad_vecs = parts.user_model.embed_items([parts.ad_text(a) for a in ads])
    scores = _checked_scores(parts.user_model.match(seg.representatives, ad_vecs), (seg.k, len(ads)))
    keep = select_pairs(scores, threshold=config.match_threshold, top_m=config.top_m,
                        ad_top_k=config.ad_top_k, max_calls=config.max_calls, live=seg.sizes > 0)
    clock.lap("match")
    plan = {"labels": seg.labels, "representatives": seg.representatives, "medoids": seg.medoids,
            "sizes": seg.sizes, "scores": scores, "keep": keep}
    if parts.generator_vectors is not None:  # the same segments, described in the generator's user space
        from creator.modeling.user_vectors import segment_vectors

        medoids = seg.medoids if config.representative == "medoid" else None
        plan["generator_representatives"] = segment_vectors(parts.generator_vectors(users), seg.labels, seg.k,
                                                            medoids)
        clock.lap("generator_vectors")
    if store:
        store.save_plan(plan, {"ad_ids": [a.ad_id for a in ads], "user_ids": [u.user_id for u in users]})
    return plan


def _generate(pairs: list[tuple[int, int]], ads: list[Ad], users: list[User], plan: dict[str, np.ndarray],
              parts: Components, config: PipelineConfig, sampling: SamplingConfig, store: ShardStore | None,
              summary: RunSummary, clock: _Clock, progress: bool) -> list[ShardRow]:
    """Generate -> guard -> rerank, shard by shard; each finished shard is saved, a rerun reads it back."""
    from tqdm.auto import tqdm

    shards = [pairs[i:i + config.shard_size] for i in range(0, len(pairs), config.shard_size)]
    summary.shards = len(shards)
    grounding = _grounding(parts, config)
    rows: list[ShardRow] = []
    for index, shard in enumerate(tqdm(shards, desc="generate", unit="shard", disable=not progress)):
        if store and store.is_done(index):
            rows.extend(ShardRow.from_dict(d) for d in store.read_shard(index))
            summary.shards_resumed += 1
            continue
        shard_rows = _run_shard(shard, ads, users, plan, parts, grounding, sampling, clock)
        if store:
            store.write_shard(index, [r.to_dict() for r in shard_rows])
        rows.extend(shard_rows)
    return rows


def _grounding(parts: Components, config: PipelineConfig) -> Callable[[Ad], AdVocabulary | None]:
    """ad -> the words its titles may use, within ``parts.decode_chars`` as the channel counts them."""
    if parts.decode_chars is None:
        return parts.generator.grounding
    from creator.channels.presets import get_channel

    wide = get_channel(config.channel).wide_counts_double
    return functools.partial(parts.generator.grounding, max_chars=parts.decode_chars, wide=wide)


def _checked_scores(scores: Any, shape: tuple[int, int]) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != shape or not np.isfinite(scores).all():
        raise ValueError(f"the match model returned {scores.shape} scores (all finite: "
                         f"{bool(np.isfinite(scores).all())}), expected finite {shape} = (segments, ads); "
                         "check the user model artefact")
    return scores


def _run_shard(pairs: list[tuple[int, int]], ads: list[Ad], users: list[User], plan: dict[str, np.ndarray],
               parts: Components, grounding: Callable[[Ad], AdVocabulary | None], sampling: SamplingConfig,
               clock: _Clock) -> list[ShardRow]:
    """Generate, guard and rerank the candidates of one shard of kept (segment, ad) pairs."""
    reps = plan.get("generator_representatives", plan["representatives"])
    requests = [GenerationRequest(f"{k}|{ads[m].ad_id}", parts.generator.prompt_embeds(ads[m], reps[k]),
                                  grounding(ads[m])) for k, m in pairs]
    clock.lap("build_requests")
    texts = parts.backend.generate(requests, sampling)
    if len(texts) != len(requests):
        raise RuntimeError(f"backend returned {len(texts)} results for {len(requests)} requests")
    clock.lap("generate")
    prefetch = getattr(parts.guard, "prefetch", None)  # the fluency gate scores the shard's candidates in batches
    if prefetch is not None:
        prefetch([t for cands in texts for t in cands])
    verdicts = [[parts.guard.check(t, ads[m], original_title=ads[m].title) for t in cands]
                for (_, m), cands in zip(pairs, texts, strict=True)]
    clock.lap("guard")
    judged = _judge(pairs, users, ads, plan, parts, texts, verdicts)
    clock.lap("judge")
    rows = []
    for i, ((k, m), cands) in enumerate(zip(pairs, texts, strict=True)):
        passing = [j for j, v in enumerate(verdicts[i]) if v.passed]  # every guard rule, the fluency gate included
        # best judge score wins, ties to the earlier candidate; without a judge the first survivor wins
        best = max(passing, key=lambda j: (judged.get((i, j), 0.0), -j)) if passing else None
        shown = best if best is not None else 0
        rows.append(ShardRow(
            segment_id=k, ad_id=ads[m].ad_id,
            title=cands[best] if best is not None else ads[m].title,
            source="personalized" if best is not None else "fallback",
            judge=judged.get((i, best)) if best is not None else None,
            candidates=list(cands),
            failed_rules=[sorted({f.rule for f in v.failures}) for v in verdicts[i]],
            verdict=verdicts[i][shown] if cands else None,
        ))
    return rows


def _judge(pairs: list[tuple[int, int]], users: list[User], ads: list[Ad], plan: dict[str, np.ndarray],
           parts: Components, texts: list[list[str]],
           verdicts: list[list[GuardVerdict]]) -> dict[tuple[int, int], float]:
    """(request, candidate) -> judge score of every surviving candidate of the shard, in one call, each against
    its segment's medoid user; empty without a judge."""
    flat = [(i, j) for i, vs in enumerate(verdicts) for j, v in enumerate(vs) if v.passed]
    if not flat or parts.judge is None:
        return {}
    medoid_users = [users[int(plan["medoids"][pairs[i][0]])] for i, _ in flat]
    got = parts.judge.score(medoid_users, [texts[i][j] for i, j in flat], [ads[pairs[i][1]] for i, _ in flat])
    return {ij: float(s) for ij, s in zip(flat, np.asarray(got, dtype=np.float64), strict=True)}


def _fallbacks(ads: list[Ad], parts: Components, config: PipelineConfig) -> dict[str, tuple[str, str]]:
    """Under a platform channel: ad_id -> (title, source) served where nothing generated passes or the pair
    was pruned (``creator.channels.shortening.channel_fallback``, once per ad); empty for ``generic``."""
    if config.channel == "generic":
        return {}
    from creator.channels.shortening import channel_fallback

    return {ad.ad_id: channel_fallback(ad, parts.guard) for ad in ads}


def _assemble(live: np.ndarray, ads: list[Ad], scores: np.ndarray, rows: list[ShardRow],
              fallback: dict[str, tuple[str, str]], summary: RunSummary) -> list[Creative]:
    """Every (live segment, ad) in segment-major order; pruned pairs keep the original title (or, under a
    platform channel, the channel's fallback, counted in ``summary.pruned_*``)."""
    by_pair = {(r.segment_id, r.ad_id): r for r in rows}
    creatives = []
    for k in live:
        for m, ad in enumerate(ads):
            r = by_pair.get((int(k), ad.ad_id))
            creatives.append(_creative(int(k), ad, float(scores[k, m]), r, fallback.get(ad.ad_id)))
            if r is None and ad.ad_id in fallback:
                summary.pruned_shortened += creatives[-1].source == "shortened"
                summary.pruned_withheld += creatives[-1].source == "withheld"
    return creatives


def _creative(segment: int, ad: Ad, match: float, row: ShardRow | None,
              fallback: tuple[str, str] | None = None) -> Creative:
    if row is None:
        title, source = fallback or (ad.title, "original")
        return Creative(ad_id=ad.ad_id, title=title, source=source, segment_id=segment,
                        scores={"match": match})
    scores = {"match": match} | ({"judge": row.judge} if row.judge is not None else {})
    title, source = row.title, row.source
    if row.source == "fallback" and fallback is not None:  # "original" under a channel is "fallback" here
        title, source = fallback[0], "fallback" if fallback[1] == "original" else fallback[1]
    return Creative(ad_id=ad.ad_id, title=title, source=source, segment_id=segment, scores=scores,
                    verdict=row.verdict)
