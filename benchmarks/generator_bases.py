"""Benchmark: trained generators side by side on the same held-out CoT rows (micro LM vs Gemma 3 270M, ...).

    python benchmarks/generator_bases.py --cot runs/cot --catalog ../shared/data/amazon_office_products \
        --generator micro-sft=runs/bench-micro/sft --generator micro-dpo=runs/bench-micro/dpo \
        --generator gemma-sft=app/pretrained/gemma-270m-cot --reward runs/reward/reward_model \
        --out runs/bench-bases

Every generator must read the same user vectors (``--user-vectors``, default ``mean-minilm``, the space the
shipped Gemma adapter was trained on). A shipped folder (``app/pretrained/...``) is installed first
(``training.install_generator``). On the ``test`` split of ``--cot`` (users no generator saw), each one
writes greedy titles with grounded decoding, as served, once with the user's own vector and once with a zero
vector. The table, one column per generator and one for the original title:

- fluency: mean NLL per token of the titles under the *stock* Gemma 3 270M (``creator.modeling.fluency``), the
  same LM for every column, so a model cannot grade itself;
- fact-check failures before any guard (the rules of ``benchmarks/generator.py``), the whole guard's pass rate,
  words per title, chrF against the teacher's title;
- the judge (``--reward``): Adv of each generator's titles over the original title and over the first
  generator's titles, per (user, ad); the share of titles a zero vector changes;
- titles/s with grounded decoding through the HF backend at batch 1 and at ``--batch`` prompts, one title each;
- with ``--open``, each generator again with an open vocabulary (no grounded decoding), as ``NAME (open)``.

Intervals: a 95% paired bootstrap over rows for the NLL difference to the original. The machine (cores,
threads, load before and after) is printed: on a shared box read the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.generator import (  # noqa: E402
    chrf,
    fact_failures,
    fail_rate,
    guard_pass_rate,
    judge_win_rate,
    paired_ci,
    rule_counts,
)

logger = logging.getLogger("bench.generator_bases")


def load_generator(path: Path, work: Path) -> Any:
    from creator.modeling.generator import PersonalizedGenerator
    from training.install_generator import InstallConfig, run

    if not (path / "tokenizer").exists() and (path / "adapter" / "adapter_model.safetensors").exists():
        path = run(InstallConfig(source=str(path), out=str(work / path.name)))  # a shipped folder
    return PersonalizedGenerator.from_pretrained(path)


def titles_per_second(gen: Any, ads: list[Any], vecs: np.ndarray, batch: int) -> float:
    """Greedy grounded titles per second through the batched HF backend (prompt building included)."""
    from creator.backends.base import SamplingConfig

    t0 = time.perf_counter()
    gen.generate_batched(ads, vecs, SamplingConfig(greedy=True, max_new_tokens=40), batch_size=batch)
    return len(ads) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cot", required=True, help="build-cot folder; its test split is scored")
    ap.add_argument("--catalog", required=True, help="the catalog the CoT rows were built from")
    ap.add_argument("--format", default="auto")
    ap.add_argument("--generator", action="append", required=True, metavar="NAME=DIR",
                    help="a trained generator artefact or a shipped folder; repeat (the first is the reference)")
    ap.add_argument("--user-vectors", default="mean-minilm")
    ap.add_argument("--reward", help="the judge (train-reward's reward_model folder)")
    ap.add_argument("--rows", type=int, default=0, help="test rows scored (0: all)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--speed-rows", type=int, default=32, help="rows timed at batch 1 and at --batch")
    ap.add_argument("--fluency-lm", default="gemma-270m")
    ap.add_argument("--open", action="store_true",
                    help="also score each generator with an open vocabulary (no grounded decoding): NAME (open)")
    ap.add_argument("--out", default="runs/bench-bases")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from creator.backends.base import SamplingConfig
    from creator.io import detect_format, load_catalog
    from creator.modeling.fluency import FluencyScorer
    from creator.modeling.user_vectors import load_user_vectors
    from training.cot_data import load_training_data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    fmt = detect_format(args.catalog) if args.format == "auto" else args.format
    catalog = load_catalog(args.catalog, fmt)
    test = load_training_data(Path(args.cot), split="test", catalog=catalog, max_rows=args.rows or None)
    rows = test.rows
    ads = [test.ads[r["ad_id"]] for r in rows]
    users = [test.users[r["user_id"]] for r in rows]
    table = load_user_vectors(args.user_vectors, list(test.users.values()))
    own = np.stack([table[r["user_id"]] for r in rows]).astype(np.float32)
    zero = np.zeros_like(own)
    refs = [r["response"] for r in rows]
    originals = [a.title for a in ads]
    greedy = SamplingConfig(greedy=True, max_new_tokens=40)
    systems: dict[str, dict[str, Any]] = {}
    for spec in args.generator:
        name, _, path = spec.partition("=")
        gen = load_generator(Path(path), out / "installed")
        t0 = time.perf_counter()
        titles = [t[0] for t in gen.generate_batched(ads, own, greedy, batch_size=args.batch)]
        seconds = time.perf_counter() - t0
        titles_zero = [t[0] for t in gen.generate_batched(ads, zero, greedy, batch_size=args.batch)]
        n = min(args.speed_rows, len(ads))
        systems[name] = {
            "path": path, "titles": titles, "titles_zero": titles_zero,
            "seconds_greedy_all_rows": round(seconds, 1),
            "titles_per_second_batch_1": round(titles_per_second(gen, ads[:n], own[:n], 1), 3),
            f"titles_per_second_batch_{args.batch}": round(titles_per_second(gen, ads[:n], own[:n], args.batch), 3),
        }
        if args.open:  # the raw model: any token of the vocabulary, the guard after it
            gen.config.grounded = False
            t0 = time.perf_counter()
            titles_open = [t[0] for t in gen.generate_batched(ads, own, greedy, batch_size=args.batch)]
            systems[f"{name} (open)"] = {"path": path, "titles": titles_open, "titles_zero": None,
                                         "seconds_greedy_all_rows": round(time.perf_counter() - t0, 1)}
        del gen
    scorer = FluencyScorer.from_pretrained(args.fluency_lm)
    nll_orig = scorer.score(originals)
    first = next(iter(systems))
    report: dict[str, Any] = {
        "rows": len(rows), "cot": args.cot, "user_vectors": args.user_vectors, "fluency_lm": args.fluency_lm,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
                   f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}",
        "original": {"nll": round(float(nll_orig.mean()), 3), "chrf": chrf(originals, refs),
                     "words": round(float(np.mean([len(t.split()) for t in originals])), 2)},
        "teacher": {"nll": round(float(scorer.score(refs).mean()), 3),
                    "words": round(float(np.mean([len(t.split()) for t in refs])), 2),
                    "judge_vs_original": judge_win_rate(args.reward, users, refs, originals, ads)},
    }
    for name, s in systems.items():
        titles = s["titles"]
        nll = scorer.score(titles)
        fails = fact_failures(titles, ads)
        report[name] = {
            **{k: v for k, v in s.items() if k not in ("titles", "titles_zero")},
            "nll": round(float(nll.mean()), 3), "nll_minus_original_ci": paired_ci(nll - nll_orig),
            "fact_fail_rate_before_guard": fail_rate(fails), "fact_fail_rules": rule_counts(fails),
            "guard_pass_rate": guard_pass_rate(titles, ads),
            "words": round(float(np.mean([len(t.split()) for t in titles])), 2),
            "chrf_vs_teacher": chrf(titles, refs),
            "changed_by_zero_vector": None if s["titles_zero"] is None else round(float(np.mean(
                [a != b for a, b in zip(titles, s["titles_zero"], strict=True)])), 3),
            "same_as_original": round(float(np.mean([a == b for a, b in zip(titles, originals, strict=True)])), 3),
            "judge_vs_original": judge_win_rate(args.reward, users, titles, originals, ads),
            "judge_own_vs_zero_vector": None if s["titles_zero"] is None else
            judge_win_rate(args.reward, users, titles, s["titles_zero"], ads),
            f"judge_vs_{first}": (judge_win_rate(args.reward, users, titles, systems[first]["titles"], ads)
                                  if name != first else None),
        }
    report["examples"] = [{"original": o, "teacher": r, **{n: s["titles"][i] for n, s in systems.items()}}
                          for i, (o, r) in enumerate(zip(originals, refs, strict=True)) if i < 20]
    (out / "bench.json").write_text(json.dumps(report, indent=2, default=str))
    print_table(report, list(systems))
    return 0


def _adv(j: Any) -> str:
    return "n/a" if not j else f"{j['adv']:+.3f} (G {j['good']} / S {j['same']} / B {j['bad']})"


def print_table(r: dict[str, Any], names: list[str]) -> None:
    print(f"\n{r['rows']} held-out rows; machine: {r['machine']}; fluency under stock {r['fluency_lm']}\n")
    cols = ["original", "teacher", *names]
    print("| measure | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    lines = [("NLL per token (stock LM)", lambda c: r[c].get("nll")),
             ("NLL minus the original's [95% CI]", lambda c: r[c].get("nll_minus_original_ci")),
             ("fact-check failures before the guard", lambda c: r[c].get("fact_fail_rate_before_guard")),
             ("guard pass rate", lambda c: r[c].get("guard_pass_rate")),
             ("words per title", lambda c: r[c].get("words")),
             ("chrF vs the teacher", lambda c: r[c].get("chrf") or r[c].get("chrf_vs_teacher")),
             ("same as the original title", lambda c: r[c].get("same_as_original")),
             ("titles a zero vector changes", lambda c: r[c].get("changed_by_zero_vector")),
             ("judge Adv vs original", lambda c: _adv(r[c].get("judge_vs_original"))
              if c != "original" else None),
             (f"judge Adv vs {names[0]}", lambda c: _adv(r[c].get(f"judge_vs_{names[0]}"))
              if c in names[1:] else None),
             ("judge Adv own vs zero vector", lambda c: _adv(r[c].get("judge_own_vs_zero_vector"))
              if c in names else None),
             ("titles/s, batch 1", lambda c: r[c].get("titles_per_second_batch_1")),
             ("titles/s, batched", lambda c: next((v for k, v in r[c].items()
                                                  if k.startswith("titles_per_second_batch_")
                                                  and not k.endswith("_1")), None))]
    for label, get in lines:
        print(f"| {label} | " + " | ".join("" if get(c) is None else str(get(c)) for c in cols) + " |")


if __name__ == "__main__":
    sys.exit(main())
