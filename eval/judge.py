"""Judge two systems' titles per (user, ad): Good / Same / Bad and Adv = (Good - Bad) / N.

    hllm-creator judge --a runs/sys_a/creatives.jsonl --b original \
        --data ../shared/data/amazon_office_products --reward-model runs/reward/reward_model
    hllm-creator judge --config eval/configs/judge.yaml

``--a`` / ``--b`` are prediction files (JSONL/CSV/Parquet) with ``user_id``, ``ad_id`` and ``title``
per row (``generate``'s per-user creatives work as they are); ``--b original`` compares against each
ad's own title, the comparison HLLM-Creator reports. With ``--llm-base-url`` an LLM judges each pair
twice with the order swapped (any OpenAI-compatible endpoint); a disagreement counts as Same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from creator.config import run_verb
from creator.records.errors import DataError, Problems
from creator.records.types import Ad, User
from eval.llm_judge import LLMJudge

logger = logging.getLogger(__name__)

VERDICTS = ("good", "same", "bad")  # from A's side: A better, tie, B better
CODE_VERDICT = {1: "good", 0: "same", -1: "bad"}  # verdict_codes -> verdict


@runtime_checkable
class Judge(Protocol):
    """Anything that scores users[i] on titles[i] (for ads[i]) as a click probability (N,)."""

    def score(
        self, users: Sequence[User], titles: Sequence[str], ads: Sequence[Ad] | None = None
    ) -> np.ndarray: ...


@dataclass
class PairwiseResult:
    """Counts from A's side. ``adv`` = (good - bad) / n, HLLM-Creator's Adv; ``per_pair`` one verdict each."""

    good: int
    same: int
    bad: int
    n: int
    adv: float
    per_pair: list[str] = field(default_factory=list)

    @classmethod
    def from_verdicts(cls, verdicts: Sequence[str]) -> PairwiseResult:
        bad_values = set(verdicts) - set(VERDICTS)
        if bad_values:
            raise ValueError(f"verdicts must be good/same/bad, got {sorted(bad_values)}")
        good, same, bad = (sum(v == k for v in verdicts) for k in VERDICTS)
        n = len(verdicts)
        return cls(good, same, bad, n, (good - bad) / n if n else 0.0, list(verdicts))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    judge: Any,
    users: Sequence[User],
    titles_a: Sequence[str],
    titles_b: Sequence[str],
    ads: Sequence[Ad] | None = None,
    *,
    margin: float = 0.01,
) -> PairwiseResult:
    """Good when p(A) - p(B) > margin, Bad when p(B) - p(A) > margin, else Same.

    A judge with a ``prefer`` method (the LLM judge) decides pairs itself; a score-only judge is
    called once per side. Swapping A and B swaps Good and Bad exactly (the rule is symmetric).
    """
    if not len(users) == len(titles_a) == len(titles_b) or (ads is not None and len(ads) != len(users)):
        raise ValueError(
            f"compare() needs one user, A title and B title (and ad) per pair: got {len(users)} users, "
            f"{len(titles_a)} A, {len(titles_b)} B, {len(ads) if ads is not None else 'no'} ads"
        )
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if hasattr(judge, "prefer"):
        return PairwiseResult.from_verdicts(judge.prefer(users, titles_a, titles_b, ads))
    pa = judge.score(list(users), list(titles_a), list(ads) if ads is not None else None)
    pb = judge.score(list(users), list(titles_b), list(ads) if ads is not None else None)
    return PairwiseResult.from_verdicts([CODE_VERDICT[int(c)] for c in verdict_codes(pa, pb, margin)])


def verdict_codes(scores_a: Any, scores_b: Any, margin: float) -> np.ndarray:
    """The one rule of every comparison, per pair: +1 when p(A) - p(B) > margin (Good), -1 when
    p(B) - p(A) > margin (Bad), 0 otherwise (Same).

    >>> verdict_codes([0.30, 0.20, 0.50], [0.20, 0.205, 0.60], 0.01).tolist()
    [1, 0, -1]
    """
    d = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    return np.where(d > margin, 1, np.where(d < -margin, -1, 0))


class GuardedJudge:
    """Scores a title the guard rejects as 0, so an ungrounded claim can never win a comparison.

    ``guard`` is anything with ``check(title, ad, *, original_title=...) -> GuardVerdict``
    (``creator.guard.check.Guard``); the ads are required.
    """

    def __init__(self, judge: Judge, guard: Any) -> None:
        self.judge, self.guard = judge, guard

    def score(
        self, users: Sequence[User], titles: Sequence[str], ads: Sequence[Ad] | None = None
    ) -> np.ndarray:
        if ads is None:
            raise ValueError("GuardedJudge needs the ads to check titles against; pass ads=[...]")
        p = np.asarray(self.judge.score(users, titles, ads), dtype=np.float32).copy()
        for i, (t, ad) in enumerate(zip(titles, ads, strict=True)):
            if not self.guard.check(t, ad, original_title=ad.title).passed:
                p[i] = 0.0
        return p


def read_predictions(path: str | Path) -> dict[tuple[str, str], str]:
    """(user_id, ad_id) -> title from a JSONL/CSV/Parquet file; a clear error on a bad or duplicate row."""
    from creator.io.records import iter_rows

    out: dict[tuple[str, str], str] = {}
    for line, row in iter_rows(path, Problems("fail"), required=("user_id", "ad_id", "title")):
        for name in ("user_id", "ad_id", "title"):
            if row.get(name) in (None, ""):
                raise DataError(
                    "prediction row lacks a field",
                    file=str(path),
                    line=line,
                    field=name,
                    expected="user_id, ad_id and title on every row",
                    got=f"keys {sorted(row)}",
                    fix="write per-user creatives (map segment titles back to their users first)",
                )
        key = (str(row["user_id"]), str(row["ad_id"]))
        if key in out:
            raise DataError(
                "duplicate (user_id, ad_id)",
                file=str(path),
                line=line,
                field="user_id",
                expected="one title per user and ad",
                got=repr(key),
                fix="keep one title per pair",
            )
        out[key] = str(row["title"])
    return out


def results_table(rows: list[tuple[str, PairwiseResult]]) -> str:
    lines = ["| judge | Good | Same | Bad | N | Adv |", "|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r.good} | {r.same} | {r.bad} | {r.n} | {r.adv:+.1%} |")
    return "\n".join(lines)


def load_reward_model(path: str | Path, *, flag: str = "--reward-model") -> Any:
    """The trained CTR reward model in ``path``: the folder ``train-reward`` writes, or a model bundle
    (``creator.bundle``; its judge, sharing the bundle's user model when it was trained on it)."""
    from creator.bundle import MANIFEST, ModelBundle
    from creator.reward.model import RewardModel

    path = Path(path)
    if (path / MANIFEST).is_file():
        bundle = ModelBundle.read(path)
        judge = bundle.load_judge(cache_dir=bundle.embeddings)
        if judge is None:
            raise ValueError(f"{flag} {path}: the model bundle holds no judge; train one with hllm-creator "
                             "train-reward, or pass its folder")
        return judge
    return RewardModel.from_pretrained(path)


EXAMPLE = """example:
  hllm-creator judge --a runs/sys_a/creatives.jsonl --b original \\
    --data ../shared/data/amazon_office_products --reward-model runs/reward/reward_model
  hllm-creator judge --config eval/configs/judge.yaml"""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class JudgeConfig:
    """``hllm-creator judge``: system A's titles against system B's (or the ads' own) per (user, ad)."""

    a: str = field(metadata=_help("predictions of system A (user_id, ad_id, title)"))
    b: str = field(metadata=_help("predictions of system B, or 'original' for the ads' own titles"))
    data: str = field(metadata=_help("the catalog the users and ads come from"))
    format: str = "auto"
    reward_model: str | None = field(default=None, metadata=_help(
        "a RewardModel folder (train-reward OUT/reward_model)"))
    margin: float = field(default=0.01, metadata=_help("|p(A) - p(B)| at most this is Same"))
    guard: bool = field(default=False, metadata=_help("score titles the guard rejects as 0"))
    llm_base_url: str | None = field(default=None, metadata=_help("LLM judge: an OpenAI-compatible endpoint"))
    llm_model: str | None = field(default=None, metadata=_help("LLM judge: the model name"))
    llm_api_key_env: str = field(default="OPENAI_API_KEY", metadata=_help(
        "LLM judge: the environment variable holding the key"))
    out: str | None = field(default=None, metadata=_help(
        "write one JSON line per pair with both titles, scores and verdicts"))

    def __post_init__(self) -> None:
        if not self.reward_model and not self.llm_model:
            raise ValueError("give --reward-model DIR and/or --llm-model NAME (with --llm-base-url)")


@dataclass
class JudgedPairs:
    """The (user, ad) pairs in A, B and the catalog, with both titles of each."""

    keys: list[tuple[str, str]]
    users: list[User]
    ads: list[Ad]
    titles_a: list[str]
    titles_b: list[str]


def shared_pairs(cfg: JudgeConfig) -> JudgedPairs:
    """The pairs of ``cfg.a`` that ``cfg.b`` and the catalog also have; a DataError when there are none."""
    from creator.io import load_catalog

    catalog = load_catalog(cfg.data, cfg.format).require_ads()
    preds_a = read_predictions(cfg.a)
    preds_b = None if cfg.b == "original" else read_predictions(cfg.b)
    keys, missing = [], 0
    for key in preds_a:
        if (
            key[0] not in catalog.users
            or key[1] not in catalog.ads
            or (preds_b is not None and key not in preds_b)
        ):
            missing += 1
            continue
        keys.append(key)
    if missing:
        logger.warning("%d pairs of --a have no match in --b or the catalog and are left out", missing)
    if not keys:
        raise DataError(
            "no (user_id, ad_id) pair is in both files and the catalog",
            file=cfg.a,
            expected="pairs shared by --a, --b and --data",
            got=f"{len(preds_a)} pairs in A, 0 usable",
            fix="check that the files come from the same catalog",
        )
    users = [catalog.users[u] for u, _ in keys]
    ads = [catalog.ads[a] for _, a in keys]
    titles_a = [preds_a[k] for k in keys]
    titles_b = [ad.title for ad in ads] if preds_b is None else [preds_b[k] for k in keys]
    return JudgedPairs(keys, users, ads, titles_a, titles_b)


def build_judges(cfg: JudgeConfig) -> list[tuple[str, Any]]:
    """(name, judge) for the reward model (behind the guard with ``cfg.guard``) and the LLM judge asked for."""
    import os

    judges: list[tuple[str, Any]] = []
    if cfg.reward_model:
        rm: Any = load_reward_model(cfg.reward_model)
        if cfg.guard:
            from creator.guard.check import Guard

            rm = GuardedJudge(rm, Guard())
        judges.append(("reward model" + (" + guard" if cfg.guard else ""), rm))
    if cfg.llm_model:
        judges.append(
            (
                f"LLM {cfg.llm_model}",
                LLMJudge(cfg.llm_model, base_url=cfg.llm_base_url, api_key=os.environ.get(cfg.llm_api_key_env)),
            )
        )
    return judges


def write_pairs(path: str | Path, pairs: JudgedPairs, results: list[tuple[str, PairwiseResult]]) -> None:
    """One JSON line per pair: both titles and each judge's verdict."""
    with open(path, "w") as fh:
        for i, (u, a) in enumerate(pairs.keys):
            rec = {
                "user_id": u,
                "ad_id": a,
                "title_a": pairs.titles_a[i],
                "title_b": pairs.titles_b[i],
                **{name: r.per_pair[i] for name, r in results},
            }
            fh.write(json.dumps(rec) + "\n")


def parse_config(argv: Sequence[str] | None = None) -> JudgeConfig:
    """``JudgeConfig`` from defaults, then ``--config YAML``, then the flags in ``argv``."""
    from creator.config import parse

    (cfg,) = parse([JudgeConfig], argv, description=__doc__.split("\n\n")[0], epilog=EXAMPLE)
    return cfg


def run(cfg: JudgeConfig) -> list[tuple[str, PairwiseResult]]:
    """Judge A against B with every judge asked for; print the table, write the pairs to ``cfg.out``."""
    pairs = shared_pairs(cfg)
    results = [
        (name, compare(j, pairs.users, pairs.titles_a, pairs.titles_b, pairs.ads, margin=cfg.margin))
        for name, j in build_judges(cfg)
    ]
    print(f"A = {cfg.a}\nB = {cfg.b}\n")
    print(results_table(results))
    if cfg.out:
        write_pairs(cfg.out, pairs, results)
    return results


def main(argv: list[str] | None = None) -> int:
    return run_verb(parse_config, run, argv)
