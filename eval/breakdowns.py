"""Breakdowns that let a person look behind the averages: worst examples, per-category means, user map."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from creator.records.types import Ad, User
from eval.config import EvalConfig
from eval.metrics import HistorySimilarity
from eval.systems import Pair, System

ORIGINAL = "original"


def worst_examples(
    name: str,
    pairs: list[Pair],
    titles: list[str],
    originals: list[str],
    fact: Any,
    comp: Any,
    lift: np.ndarray,
    judge_scores: dict[str, np.ndarray],
    k: int,
) -> list[dict[str, Any]]:
    """The k worst titles of one system per metric, with what is wrong, so a person can look."""

    def row(metric: str, i: int, value: float, detail: str) -> dict[str, Any]:
        return {
            "metric": metric,
            "system": name,
            "user_id": pairs[i][0],
            "ad_id": pairs[i][1],
            "title": titles[i],
            "original": originals[i],
            "value": round(float(value), 4),
            "detail": detail,
        }

    out = []
    bad = sorted(
        (i for i, it in enumerate(fact.items) if it.ungrounded), key=lambda i: -len(fact.items[i].failures)
    )
    out += [
        row(
            "factuality",
            i,
            len(fact.items[i].failures),
            "; ".join(f"{f.rule}: {f.span!r}" for f in fact.items[i].failures),
        )
        for i in bad[:k]
    ]
    nonc = sorted((i for i in range(len(titles)) if not comp.compliant[i]), key=lambda i: -len(titles[i]))
    out += [row("compliance", i, len(titles[i]), "; ".join(comp.reasons(i))) for i in nonc[:k]]
    order = [i for i in np.argsort(np.nan_to_num(lift, nan=np.inf)) if np.isfinite(lift[i])][:k]
    out += [
        row("similarity_lift", i, lift[i], "moved away from the user's history") for i in order if lift[i] < 0
    ]
    if judge_scores:
        d = judge_scores[name] - judge_scores[ORIGINAL]
        out += [
            row("judge_lift", i, d[i], "judge prefers the original title")
            for i in np.argsort(d)[:k]
            if d[i] < 0
        ]
    return out


def per_group(
    cfg: EvalConfig,
    A: list[Ad],
    names: list[str],
    judge_scores: dict[str, np.ndarray],
    sim_lift: dict[str, np.ndarray],
    top: int = 8,
) -> dict[str, Any]:
    """Mean judge score (or similarity lift without a judge) per category, or per brand when the catalog
    has no categories; the ``top`` groups with most pairs."""
    key = cfg.group_by
    if key == "category" and not any(a.category for a in A):
        key = "brand"  # e.g. the Amazon-2018 Office_Products export has empty categories
    groups: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(A):
        groups[getattr(a, key) or "(none)"].append(i)
    chosen = sorted(groups, key=lambda g: (-len(groups[g]), g))[:top]
    metric = "judge_score" if judge_scores else "similarity_lift"
    values = judge_scores if judge_scores else sim_lift
    return {
        "key": key,
        "metric": metric,
        "groups": {
            g: {"n": len(groups[g]), **{n: float(np.nanmean(values[n][groups[g]])) for n in names}}
            for g in chosen
        },
    }


def user_map(
    cfg: EvalConfig,
    systems: list[System],
    tables: dict[str, dict[str, int]],
    U: list[User],
    encoder: Any,
    max_users: int = 1500,
) -> dict[str, Any] | None:
    """2D PCA of the evaluated users' history profiles, coloured by the first segment table given."""
    table_path = next((cfg.segment_table(s.name) for s in systems if cfg.segment_table(s.name)), None)
    if table_path is None:
        return None
    seg = tables[table_path]
    seen: dict[str, User] = {}
    for u in U:
        if u.user_id in seg and len(seen) < max_users:
            seen.setdefault(u.user_id, u)
    if len(seen) < 3:
        return None
    profiles = HistorySimilarity(encoder).profiles([u.history_titles for u in seen.values()])
    x = profiles - profiles.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T  # (U, 2)
    return {"xy": xy, "labels": np.array([seg[u] for u in seen]), "table": table_path}


def side_by_side(
    name: str,
    pairs: list[Pair],
    titles: list[str],
    originals: list[str],
    fact: Any,
    judge_scores: dict[str, np.ndarray],
    k: int,
    seed: int,
    users: set[str] | None = None,
) -> dict[str, Any]:
    """``k`` random (seeded) pairs where the system serves a title other than the ad's own, each with the
    original beside it, the fact check and the judge's two scores: a sheet a marketer reads top to bottom.
    ``users``: draw only from these users (the held-out users); None = every evaluated pair's user."""
    pool = [i for i in range(len(pairs)) if titles[i] != originals[i] and (users is None or pairs[i][0] in users)]
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    picked = sorted(rng.choice(pool, size=min(k, len(pool)), replace=False).tolist()) if pool else []
    rows = []
    for i in picked:
        item = fact.items[i]
        row = {"user_id": pairs[i][0], "ad_id": pairs[i][1], "original": originals[i], "served": titles[i],
               "facts": "; ".join(f"{f.rule}: {f.span!r}" for f in item.failures) if item.ungrounded else "ok"}
        if judge_scores:
            row["judge_served"] = round(float(judge_scores[name][i]), 4)
            row["judge_original"] = round(float(judge_scores[ORIGINAL][i]), 4)
        rows.append(row)
    return {"drawn_from": len(pool), "users": "held-out" if users is not None else "all evaluated", "pairs": rows}


def sheet_rows(sheet: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One system's side-by-side sheet: original and served title per pair, with the fact check and judge."""
    judged = any("judge_served" in r for r in sheet["pairs"])
    head = ["#", "user", "ad", "original", "served", "facts", *(["judge served / original"] if judged else [])]
    return head, [
        [str(i + 1), r["user_id"], r["ad_id"], r["original"], r["served"], r["facts"],
         *([f"{r['judge_served']:.4f} / {r['judge_original']:.4f}"] if judged else [])]
        for i, r in enumerate(sheet["pairs"])
    ]


def sheet_title(name: str, sheet: dict[str, Any]) -> str:
    return (f"Side by side: {name} ({len(sheet['pairs'])} random pairs of {sheet['drawn_from']} where it changed "
            f"the title; {sheet['users']} users)")
