"""``hllm-creator quickstart``: the whole chain on the bundled sample, ending with a summary.

    hllm-creator quickstart --out runs/quickstart
    hllm-creator quickstart --data examples/office_products_sample --format jsonl --out runs/qs

Stages: load and validate the catalog -> embed ads and history items with the offline MiniLM
(cached, so a rerun embeds nothing twice) -> a zero-shot audience preview (for a few ads, the users
whose mean history vector is closest) -> summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from creator.io import load_catalog

REPO_SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "office_products_sample"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hllm-creator quickstart", description=__doc__.split("\n\n")[0],
                                epilog="examples:\n" + __doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO_SAMPLE), help="catalog to run on (default: the bundled sample)")
    p.add_argument("--format", default="auto", help="catalog format (default: detect)")
    p.add_argument("--out", default="runs/quickstart", help="output folder")
    p.add_argument("--preview-ads", type=int, default=3, help="ads shown in the audience preview")
    return p


class Stages:
    """Runs named stages in order, timing each, and keeps what each reports for the summary."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kwargs):
        print(f"\n== {name}", flush=True)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        return out


def embed_catalog(catalog, out: Path) -> dict[str, Any]:
    from creator.modeling.item_encoder import SentenceItemEncoder

    enc = SentenceItemEncoder(cache_dir=out / "cache")
    ad_ids = sorted(catalog.ads)
    ad_vecs = enc.encode([catalog.ads[a].title for a in ad_ids], progress=True)
    user_ids = sorted(catalog.users)
    titles = sorted({h.title for u in catalog.users.values() for h in u.history})
    title_vecs = dict(zip(titles, enc.encode(titles, progress=True), strict=True))
    user_vecs = np.zeros((len(user_ids), enc.dim), dtype=np.float32)
    for i, uid in enumerate(user_ids):
        hist = catalog.users[uid].history
        if hist:
            v = np.mean([title_vecs[h.title] for h in hist], axis=0)
            user_vecs[i] = v / max(np.linalg.norm(v), 1e-8)
    np.save(out / "ad_vectors.npy", ad_vecs)
    np.save(out / "user_mean_vectors.npy", user_vecs)
    print(f"embedded {len(ad_ids)} ads and {len(titles)} distinct history titles "
          f"({enc.stats['computed']} computed, {enc.stats['cached']} from cache)")
    return {"ad_ids": ad_ids, "ad_vecs": ad_vecs, "user_ids": user_ids, "user_vecs": user_vecs,
            "computed": enc.stats["computed"], "cached": enc.stats["cached"]}


def audience_preview(catalog, emb: dict[str, Any], n_ads: int) -> list[dict[str, Any]]:
    sims = emb["ad_vecs"] @ emb["user_vecs"].T  # (A, U) cosine: ad title vs mean history vector
    reach = (sims > 0.5).sum(axis=1)
    order = np.argsort(-reach, kind="stable")[:n_ads]
    preview = []
    for a in order:
        ad = catalog.ads[emb["ad_ids"][a]]
        top = np.argsort(-sims[a], kind="stable")[:3]
        users = [{"user_id": emb["user_ids"][u], "similarity": round(float(sims[a, u]), 3),
                  "recent": catalog.users[emb["user_ids"][u]].history_titles[-2:]} for u in top]
        preview.append({"ad_id": ad.ad_id, "title": ad.title, "selling_points": ad.selling_points[:3],
                        "facts": [f.text for f in ad.facts][:6], "close_users": users})
        print(f"\nad {ad.ad_id}: {ad.title}")
        print(f"  facts: {', '.join(f.text for f in ad.facts[:6]) or '-'}")
        for sp in ad.selling_points[:2]:
            print(f"  selling point: {sp}")
        for u in users:
            print(f"  close user {u['user_id']} (cos {u['similarity']}): recently {u['recent']}")
    return preview


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    catalog = stages.run("load and validate", load_catalog, args.data, args.format)
    summary = catalog.summary()
    print(f"{summary['ads']} ads, {summary['users']} users, {summary['interactions']} interactions, "
          f"{summary['rejected_rows']} rejected rows, {summary['warnings']} warnings")
    emb = stages.run("embed (offline MiniLM, cached)", embed_catalog, catalog, out)
    preview = stages.run("zero-shot audience preview", audience_preview, catalog, emb, args.preview_ads)
    result = {"catalog": summary, "embeddings": {"ads": len(emb["ad_ids"]), "users": len(emb["user_ids"]),
                                                 "computed": emb["computed"], "cached": emb["cached"]},
              "preview": preview, "seconds": stages.seconds}
    (out / "summary.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("\n== summary")
    print(f"  loaded      {summary['ads']} ads, {summary['users']} users from {args.data}")
    print(f"  embedded    {emb['computed']} texts computed, {emb['cached']} from cache")
    print(f"  previewed   {len(preview)} ads with their closest users")
    print("  time        " + ", ".join(f"{k} {v}s" for k, v in stages.seconds.items()))
    print(f"  written     {out / 'summary.json'}, ad_vectors.npy, user_mean_vectors.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
