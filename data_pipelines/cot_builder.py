"""The CoT dataset builder behind ``hllm-creator build-cot`` (see ``data_pipelines.cot`` for the command).

Per chunk of rows: profile requests -> ``candidates`` CoT-title requests per row -> the guard on
every candidate (and, optionally, a teacher fact check) -> scores -> the best grounded candidate
becomes the row, the others feed preference pairs; every row that cannot be built is kept with
its reason. The requests themselves (prompts, payloads, sampling) are built by
``data_pipelines.cot_requests.CoTRequests``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
from creator.io.catalog import Catalog
from creator.io.hllm import write_hllm_parquet
from creator.io.records import write_records
from creator.modeling.prompts import CREATIVE_PROMPT1_V1, CREATIVE_PROMPT2_V1, bullets
from creator.records.types import Ad, User
from data_pipelines.cot_config import CoTConfig, split_of
from data_pipelines.cot_requests import CoTRequests
from data_pipelines.preference import Candidate, Scorer, load_scorer, pick_pair
from data_pipelines.teachers import (
    CachedTeacher,
    ResponseCache,
    Teacher,
    TeacherRequest,
    TeacherResult,
)

logger = logging.getLogger(__name__)


class CoTBuilder:
    """One build. ``run()`` returns the summary; rows, rejects and pairs are kept on the instance."""

    def __init__(
        self,
        cfg: CoTConfig,
        catalog: Catalog,
        teacher: Teacher,
        *,
        scorer: Scorer | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.cfg = cfg
        self.catalog = catalog
        brands = sorted(set(known_brands_from_ads(catalog.ads.values())) | set(cfg.known_brands))
        self.guard = guard or Guard(
            GuardConfig(max_chars=cfg.max_chars, max_added_chars=cfg.max_added_chars, flag_unchanged=True,
                        channel=cfg.channel),
            known_brands=brands,
        )
        self.requests = CoTRequests(cfg, catalog)
        self.cache = ResponseCache(cfg.cache_path)
        self.teacher = CachedTeacher(teacher, self.cache)
        self.scorer = scorer or load_scorer(cfg.scorer)
        self.rows: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.pairs: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.failed_requests = 0
        self._seen: set[tuple[str, str, tuple[str, ...]]] = set()

    # ---- the flow -----------------------------------------------------------------------------
    async def _ask(self, requests: list[TeacherRequest], bar: tqdm) -> dict[str, TeacherResult]:
        def done(req: TeacherRequest, res: TeacherResult) -> None:
            bar.update(1)
            if res.failures or not res.ok:
                self.failures.append(
                    {
                        "key": req.key,
                        "task": req.task,
                        "ok": res.ok,
                        "error": res.error,
                        "attempts": res.attempts,
                        "failures": res.failures,
                    }
                )
            if not res.ok:
                self.failed_requests += 1

        results = await self.teacher.generate(requests, on_result=done)
        return {r.key: r for r in results}

    async def run_chunk(self, rows: list[tuple[int, User, str]], bar: tqdm) -> None:
        ads = self.catalog.ads
        prof = await self._ask([self.requests.profile(i, u) for i, u, _ in rows], bar)
        profiles: dict[int, dict[str, Any]] = {}
        for i, user, ad_id in rows:
            res = prof[f"profile:{i}"]
            if res.ok:
                profiles[i] = res.data()
            else:
                self._reject(i, user, ads[ad_id], "teacher_failed", f"profile: {res.error}", [])
        cot_reqs = [
            self.requests.cot(i, k, u, ads[a], profiles[i])
            for i, u, a in rows
            if i in profiles
            for k in range(self.cfg.candidates)
        ]
        cots = await self._ask(cot_reqs, bar)
        cands: dict[int, list[dict[str, Any]]] = {}
        for i, _user, ad_id in rows:
            if i not in profiles:
                continue
            for k in range(self.cfg.candidates):
                res = cots[f"cot:{i}:{k}"]
                if not res.ok:
                    cands.setdefault(i, []).append({"k": k, "error": res.error})
                    continue
                data = res.data()
                verdict = self.guard.check(data["title"], ads[ad_id])
                cands.setdefault(i, []).append({"k": k, **data, "verdict": verdict.to_dict()})
        if self.cfg.llm_fact_check:
            await self._llm_check(rows, cands, bar)
        users, titles, targets, where = [], [], [], []
        for i, user, ad_id in rows:
            for c in cands.get(i, []):
                if "title" in c:
                    users.append(user)
                    titles.append(c["title"])
                    targets.append(ads[ad_id])
                    where.append(c)
        scores = self.scorer.score(users, titles, targets) if titles else []
        for c, s in zip(where, scores, strict=True):
            c["score"] = float(s)
        for i, user, ad_id in rows:
            if i in profiles:
                self._assemble(i, user, ads[ad_id], profiles[i], cands.get(i, []))

    async def _llm_check(
        self, rows: list[tuple[int, User, str]], cands: dict[int, list[dict[str, Any]]], bar: tqdm
    ) -> None:
        ads = self.catalog.ads
        reqs = {}
        for i, _, ad_id in rows:
            for c in cands.get(i, []):
                if c.get("verdict", {}).get("passed"):
                    reqs[(i, c["k"])] = self.requests.check(i, c["k"], ads[ad_id], c["title"])
        answers = await self._ask(list(reqs.values()), bar)
        for (i, k), req in reqs.items():
            res = answers[req.key]
            c = next(c for c in cands[i] if c["k"] == k)
            data = (
                res.data()
                if res.ok
                else {
                    "supported": False,
                    "unsupported_claims": [],
                    "reason": f"fact check failed: {res.error}",
                }
            )
            if not data["supported"]:
                c["verdict"]["passed"] = False
                c["verdict"]["checker"] += "+teacher"
                c["verdict"]["failures"].append(
                    {
                        "rule": "ungrounded_claim",
                        "span": ", ".join(data["unsupported_claims"]),
                        "reason": f"teacher fact check: {data['reason']}"[:300],
                    }
                )

    def _base(self, i: int, user: User, ad: Ad | str) -> dict[str, Any]:
        """Columns every row has; ``ad`` may be a bare id when the catalog lacks the ad."""
        hist = user.recent(self.cfg.history_len)
        known = isinstance(ad, Ad)
        return {
            "row_id": i,
            "user_id": user.user_id,
            "ad_id": ad.ad_id if known else ad,
            "split": split_of(user.user_id, self.cfg),
            "original_title": ad.title if known else "",
            "original_description": ad.description if known else "",
            "title_list": [h.title for h in hist],
            "item_id_list": [h.item_id for h in hist],
            "teacher": self.teacher.name,
        }

    def _reject(
        self, i: int, user: User, ad: Ad | str, reason: str, detail: str, cands: list[dict[str, Any]]
    ) -> None:
        self.rejected.append(
            {
                **self._base(i, user, ad),
                "reject_reason": reason,
                "detail": detail,
                "candidates": json.dumps(cands, ensure_ascii=False),
            }
        )

    def _assemble(
        self, i: int, user: User, ad: Ad, profile: dict[str, Any], cands: list[dict[str, Any]]
    ) -> None:
        titled = [c for c in cands if "title" in c]
        if not titled:
            errors = Counter(c.get("error") for c in cands)
            self._reject(i, user, ad, "teacher_failed", f"cot_title: {dict(errors)}", cands)
            return
        passed = [c for c in titled if c["verdict"]["passed"]]
        if not passed:
            rules = Counter(c["verdict"]["failures"][0]["rule"] for c in titled)
            self._reject(
                i,
                user,
                ad,
                rules.most_common(1)[0][0],
                "; ".join(f"{c['title']!r}: {c['verdict']['failures'][0]['reason']}" for c in titled)[:1000],
                cands,
            )
            return
        best = max(passed, key=lambda c: c["score"])
        profile_text = json.dumps(profile, ensure_ascii=False)
        self.rows.append(
            {
                **self._base(i, user, ad),
                "user_profile": profile_text,
                "profile": profile_text,
                "prompt1": CREATIVE_PROMPT1_V1,
                "prompt2": CREATIVE_PROMPT2_V1.format(
                    title=ad.title, selling_points=bullets(ad.selling_points)
                ),
                "response": best["title"],
                "suitable_user_info": best["suitable_user_info"],
                "selling_points_used": best["selling_points"],
                "verdict": json.dumps(best["verdict"]),
                "score": best["score"],
                "candidates": json.dumps(cands, ensure_ascii=False),
            }
        )
        pair = pick_pair(
            [
                Candidate(
                    c["title"],
                    c["verdict"]["passed"],
                    c["score"],
                    [f["rule"] for f in c["verdict"]["failures"]],
                )
                for c in titled
            ]
        )
        if pair:
            chosen, rejected = pair
            row = self.rows[-1]
            self.pairs.append(
                {
                    "user_id": user.user_id,
                    "ad_id": ad.ad_id,
                    "split": row["split"],
                    "prompt1": row["prompt1"],
                    "prompt2": row["prompt2"],
                    "original_title": ad.title,
                    "chosen": chosen.title,
                    "rejected": rejected.title,
                    "chosen_score": chosen.score,
                    "rejected_score": rejected.score,
                    "rejected_failures": rejected.failures,
                }
            )

    async def run(self) -> dict[str, Any]:
        start = time.perf_counter()
        rows: list[tuple[int, User, str]] = []
        for i, (user, ad_id) in enumerate(self.catalog.next_item_rows(self.cfg.min_history)):
            if self.cfg.limit is not None and len(rows) >= self.cfg.limit:
                break
            if ad_id not in self.catalog.ads:
                self._reject(i, user, ad_id, "missing_ad", f"the next item {ad_id} has no ad record", [])
                continue
            key = (user.user_id, ad_id, tuple(h.item_id for h in user.recent(self.cfg.history_len)))
            if key in self._seen:  # identical input: rejected before any request is paid for
                self._reject(
                    i,
                    user,
                    self.catalog.ads[ad_id],
                    "duplicate",
                    "same user, history and ad as an earlier row",
                    [],
                )
                continue
            self._seen.add(key)
            rows.append((i, user, ad_id))
        per_row = 1 + self.cfg.candidates * (2 if self.cfg.llm_fact_check else 1)
        with tqdm(total=len(rows) * per_row, desc="teacher requests", unit="req", mininterval=2) as bar:
            # two chunks in flight: one chunk's CoT requests overlap the next chunk's profiles, so the
            # teacher never idles at a stage boundary (request concurrency stays bounded by the teacher)
            pending: set[asyncio.Task] = set()
            for s in range(0, len(rows), self.cfg.chunk_rows):
                pending.add(asyncio.ensure_future(self.run_chunk(rows[s : s + self.cfg.chunk_rows], bar)))
                if len(pending) >= 2:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
            await asyncio.gather(*pending)
        close = getattr(self.teacher.teacher, "aclose", None)
        if close is not None:  # an HTTP client's connections belong to this event loop
            await close()
        return self.summary(len(rows), time.perf_counter() - start)

    def summary(self, n_rows: int, seconds: float) -> dict[str, Any]:
        reasons = Counter(r["reject_reason"] for r in self.rejected)
        return {
            "rows": n_rows + reasons.get("missing_ad", 0),
            "built": len(self.rows),
            "rejected": len(self.rejected),
            "rejected_by_reason": dict(reasons.most_common()),
            "pairs": len(self.pairs),
            "splits": dict(Counter(r["split"] for r in self.rows)),
            "requests_failed_after_retries": self.failed_requests,
            "requests_with_retries": sum(1 for f in self.failures if f["ok"]),
            "from_cache": self.teacher.stats["hits"],
            "sent_to_teacher": self.teacher.stats["misses"],
            "teacher": self.teacher.name,
            "seconds": round(seconds, 1),
        }

    def write(self, out: Path, summary: dict[str, Any]) -> None:
        from creator.config import save_resolved

        out.mkdir(parents=True, exist_ok=True)
        rows = sorted(self.rows, key=lambda r: r["row_id"])
        write_hllm_parquet(rows, out / "cot.parquet")
        write_records(sorted(self.rejected, key=lambda r: r["row_id"]), out / "rejected.parquet")
        write_records(self.pairs, out / "pairs.parquet")
        write_records(self.failures, out / "failures.jsonl")
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        save_resolved(out / "resolved_config.yaml", self.cfg)


def load_cot_dataset(out: str | Path, *, pairs: bool = False) -> Any:
    """A built CoT folder as a ``datasets.DatasetDict`` keyed by split (``pairs=True``: the DPO pairs)."""
    import datasets

    table = datasets.load_dataset(
        "parquet", data_files=str(Path(out) / ("pairs.parquet" if pairs else "cot.parquet")), split="train"
    )
    return datasets.DatasetDict(
        {s: table.filter(lambda r, s=s: r["split"] == s) for s in sorted(set(table["split"]))}
    )
