"""Two judges trained on the same data, compared on the same held-out rows: click AUC with a paired interval,
and how often each ranks the real title above its corrupted versions.

    python benchmarks/judge_compare.py runs/reward-before runs/reward-after

Each folder is a ``train-reward`` output (``metrics.json`` and ``test_scores.npz``, the uniform test rows'
scores). The rows must be the same (same data, split and seed), which the script checks. The AUC interval
resamples whole requests (a positive and its sampled negatives) with replacement.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creator.reward.metrics import paired_auc_delta  # noqa: E402


def load(folder: Path) -> tuple[dict, dict]:
    for name in ("metrics.json", "test_scores.npz"):
        if not (folder / name).exists():
            raise SystemExit(f"{folder}: no {name}; pass a train-reward output folder (its --out), trained by "
                             "this version")
    scores = np.load(folder / "test_scores.npz")
    return json.loads((folder / "metrics.json").read_text()), {k: scores[k] for k in scores.files}


def compare(a: Path, b: Path, n_resamples: int = 1000, seed: int = 0) -> dict:
    (ma, sa), (mb, sb) = load(a), load(b)
    if not (np.array_equal(sa["label"], sb["label"]) and np.array_equal(sa["group"], sb["group"])):
        raise SystemExit(f"{a} and {b} were not tested on the same rows (train them on the same data, split and "
                         "seed)")
    d = paired_auc_delta(sa["label"], sa["logit"], sb["logit"], sa["group"], n_resamples, seed)
    kinds = sorted(set(ma.get("corruptions") or {}) | set(mb.get("corruptions") or {}))
    beats = {k: [((m.get("corruptions") or {}).get(k) or {}).get("real_beats_corrupted") for m in (ma, mb)]
             for k in kinds}
    return {"auc": d, "real_beats_corrupted": beats, "rows": int(len(sa["label"]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="the first judge's train-reward folder (the baseline)")
    ap.add_argument("b", type=Path, help="the second judge's")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    r = compare(args.a, args.b, args.resamples, args.seed)
    d = r["auc"]
    print(f"A = {args.a}, B = {args.b}; {r['rows']} held-out rows in {d['n_groups']} requests\n")
    print("| measure | A | B | B - A [95% CI] |\n|---|---:|---:|---|")
    print(f"| click AUC | {d['a']:.4f} | {d['b']:.4f} | {d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] |")
    for kind, (va, vb) in r["real_beats_corrupted"].items():
        fa, fb = (f"{v:.1%}" if v is not None else "-" for v in (va, vb))
        print(f"| real title beats its corruption: {kind} | {fa} | {fb} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
