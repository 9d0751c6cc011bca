"""Judge two systems' titles per (user, ad): Good / Same / Bad and Adv = (Good - Bad) / N.

    hllm-creator judge --a runs/sys_a/creatives.jsonl --b original \
        --data ../shared/data/amazon_office_products --reward-model runs/reward/reward_model

``--a`` / ``--b`` are prediction files (JSONL/CSV/Parquet) with ``user_id``, ``ad_id`` and ``title``
per row (``generate``'s per-user creatives work as they are); ``--b original`` compares against each
ad's own title, the comparison HLLM-Creator reports. With ``--llm-base-url`` an LLM judges each pair
twice with the order swapped (any OpenAI-compatible endpoint); a disagreement counts as Same.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from creator.records.errors import DataError, Problems
from creator.records.types import Ad, User

logger = logging.getLogger(__name__)

VERDICTS = ("good", "same", "bad")  # from A's side: A better, tie, B better


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
    pa = np.asarray(
        judge.score(list(users), list(titles_a), list(ads) if ads is not None else None), dtype=np.float64
    )
    pb = np.asarray(
        judge.score(list(users), list(titles_b), list(ads) if ads is not None else None), dtype=np.float64
    )
    diff = pa - pb
    verdicts = ["good" if d > margin else "bad" if d < -margin else "same" for d in diff]
    return PairwiseResult.from_verdicts(verdicts)


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


JUDGE_PAIRWISE_V1 = """You judge ad titles for one shopper.
The shopper recently engaged with these items (oldest first):
{history}

The product: {ad_title}
Product facts: {ad_points}

Title A: {title_a}
Title B: {title_b}

Which title is this shopper more likely to click? A title that invents facts not in the product
facts, copies the shopper's past items, or stuffs keywords is worse. Answer with one word: A, B or Same."""

JUDGE_POINTWISE_V1 = """The shopper recently engaged with these items (oldest first):
{history}

Product: {ad_title}
Ad title shown: {title}

How likely is this shopper to click this ad title? Answer with one integer from 0 to 100."""


class LLMJudge:
    """An LLM as judge over any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, OpenAI...).

    ``prefer`` asks twice per pair with the order swapped: Good only if A wins both times, Bad only
    if B wins both times, otherwise Same (disagreement, a tie or an unreadable answer).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        temperature: float = 0.0,
        max_history: int = 20,
    ) -> None:
        if client is None:
            from openai import OpenAI

            client = OpenAI(base_url=base_url, api_key=api_key or "EMPTY")
        self.client, self.model, self.temperature, self.max_history = client, model, temperature, max_history
        self.unreadable = 0

    def _ask(self, prompt: str) -> str:
        resp = self.client.chat.completions.create(
            model=self.model,
            temperature=self.temperature,
            max_tokens=8,
            messages=[{"role": "user", "content": prompt}],
        )
        return (resp.choices[0].message.content or "").strip()

    def _history(self, user: User) -> str:
        return "\n".join(f"- {h.title}" for h in user.recent(self.max_history)) or "- (none)"

    def _choice(self, answer: str) -> str | None:
        m = re.match(r"\W*(same|a|b)\b", answer.lower())
        if m is None:
            self.unreadable += 1
            return None
        return m.group(1)

    def prefer(
        self,
        users: Sequence[User],
        titles_a: Sequence[str],
        titles_b: Sequence[str],
        ads: Sequence[Ad] | None = None,
    ) -> list[str]:
        out = []
        for i, (u, a, b) in enumerate(zip(users, titles_a, titles_b, strict=True)):
            ad = ads[i] if ads is not None else None
            ctx = {
                "history": self._history(u),
                "ad_title": ad.title if ad else "(not given)",
                "ad_points": "; ".join(ad.selling_points[:6]) if ad else "(not given)",
            }
            first = self._choice(self._ask(JUDGE_PAIRWISE_V1.format(**ctx, title_a=a, title_b=b)))
            second = self._choice(self._ask(JUDGE_PAIRWISE_V1.format(**ctx, title_a=b, title_b=a)))
            out.append(
                "good"
                if (first, second) == ("a", "b")
                else "bad"
                if (first, second) == ("b", "a")
                else "same"
            )
        return out

    def score(
        self, users: Sequence[User], titles: Sequence[str], ads: Sequence[Ad] | None = None
    ) -> np.ndarray:
        out = np.zeros(len(titles), dtype=np.float32)
        for i, (u, t) in enumerate(zip(users, titles, strict=True)):
            ad_title = ads[i].title if ads is not None else "(not given)"
            answer = self._ask(
                JUDGE_POINTWISE_V1.format(history=self._history(u), ad_title=ad_title, title=t)
            )
            m = re.search(r"\d+", answer)
            if m is None:
                self.unreadable += 1
            out[i] = min(int(m.group()), 100) / 100.0 if m else 0.5
        return out


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hllm-creator judge",
        description=__doc__.split("\n\n")[0],
        epilog="example:\n  hllm-creator judge --a runs/sys_a/creatives.jsonl --b original "
        "--data ../shared/data/amazon_office_products "
        "--reward-model runs/reward/reward_model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--a", required=True, help="predictions of system A (user_id, ad_id, title)")
    parser.add_argument(
        "--b", required=True, help="predictions of system B, or 'original' for the ads' own titles"
    )
    parser.add_argument("--data", required=True, help="the catalog the users and ads come from")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--reward-model", help="a RewardModel folder (train-reward OUT/reward_model)")
    parser.add_argument("--margin", type=float, default=0.01, help="|p(A) - p(B)| at most this is Same")
    parser.add_argument(
        "--guard", action="store_true", help="score titles the guard rejects as 0 (needs creator.guard.check)"
    )
    llm = parser.add_argument_group("LLM judge (optional, OpenAI-compatible)")
    llm.add_argument("--llm-base-url")
    llm.add_argument("--llm-model")
    llm.add_argument(
        "--llm-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key"
    )
    parser.add_argument("--out", help="write one JSON line per pair with both titles, scores and verdicts")
    args = parser.parse_args(argv)
    if not args.reward_model and not args.llm_model:
        parser.error("give --reward-model DIR and/or --llm-model NAME (with --llm-base-url)")
    import os

    from creator.io import load_catalog

    catalog = load_catalog(args.data, args.format).require_ads()
    preds_a = read_predictions(args.a)
    preds_b = None if args.b == "original" else read_predictions(args.b)
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
            file=args.a,
            expected="pairs shared by --a, --b and --data",
            got=f"{len(preds_a)} pairs in A, 0 usable",
            fix="check that the files come from the same catalog",
        )
    users = [catalog.users[u] for u, _ in keys]
    ads = [catalog.ads[a] for _, a in keys]
    titles_a = [preds_a[k] for k in keys]
    titles_b = [ad.title for ad in ads] if preds_b is None else [preds_b[k] for k in keys]
    judges: list[tuple[str, Any]] = []
    if args.reward_model:
        from creator.reward.model import RewardModel

        rm: Any = RewardModel.from_pretrained(args.reward_model)
        if args.guard:
            try:
                from creator.guard.check import Guard  # type: ignore[import-not-found]
            except ImportError:
                parser.error("--guard needs creator.guard.check, which this checkout does not have")
            rm = GuardedJudge(rm, Guard())
        judges.append(("reward model" + (" + guard" if args.guard else ""), rm))
    if args.llm_model:
        judges.append(
            (
                f"LLM {args.llm_model}",
                LLMJudge(
                    args.llm_model, base_url=args.llm_base_url, api_key=os.environ.get(args.llm_api_key_env)
                ),
            )
        )
    results = [(name, compare(j, users, titles_a, titles_b, ads, margin=args.margin)) for name, j in judges]
    print(f"A = {args.a}\nB = {args.b}\n")
    print(results_table(results))
    if args.out:
        with open(args.out, "w") as fh:
            for i, (u, a) in enumerate(keys):
                rec = {
                    "user_id": u,
                    "ad_id": a,
                    "title_a": titles_a[i],
                    "title_b": titles_b[i],
                    **{name: r.per_pair[i] for name, r in results},
                }
                fh.write(json.dumps(rec) + "\n")
    return 0
