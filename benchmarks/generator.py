"""Benchmark: the generator chain pretrain-lm -> sft -> dpo with the tiny preset, timed, then held-out checks.

    python benchmarks/generator.py --data ../shared/data --cot runs/cot --out runs/bench-generator

``--cot`` is the folder of ``hllm-creator build-cot`` (cot.parquet + pairs.parquet). Without it the
script builds one with the offline teacher when ``data_pipelines.cot`` is importable (``--cot-limit``
rows), else it stops and says so. User vectors: ``--user-vectors`` (a train-encoders folder or a vector
file); the default ``mean-minilm`` is the parameter-free mean of MiniLM history-title embeddings.

Held-out rows (split ``test``, users disjoint from training) are scored with the DPO model:
- teacher-forced NLL per token of the teacher's title with the user's own vector, another user's
  vector (shuffled) and a zero vector: if the model uses the vector, its own must score best;
- greedy titles with the user's vector, a zeroed one and another user's; chrF of each against the
  teacher's title; how often the vector changes the title;
- fact check: share of titles failing the fact rules of ``creator.guard.check`` before any guard is applied,
  with an open vocabulary (the raw LM) and with grounded decoding (the default, ``creator.decoding.words``);
- judge (``--reward DIR``): Good/Same/Bad and Adv of the generated titles against the original title,
  and of the user's own vector against the zeroed and the shuffled vector (the ablation).
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

from creator.config import load  # noqa: E402
from creator.modeling.generator import PersonalizedGenerator, SamplingConfig  # noqa: E402

logger = logging.getLogger("bench.generator")
FACT_RULES = {
    "ungrounded_number",
    "changed_unit",
    "ungrounded_model_number",
    "wrong_brand",
    "ungrounded_claim",
    "off_topic",
}


def build_cot(data: Path, out: Path, limit: int) -> Path:
    try:
        from data_pipelines.cot import main as build_cot_main
    except ImportError as err:
        raise SystemExit(
            f"no --cot given and data_pipelines.cot is not importable ({err}); run "
            "'hllm-creator build-cot --teacher offline ...' and pass its --out as --cot"
        ) from err
    code = build_cot_main(
        [
            "--data",
            str(data / "amazon_office_products"),
            "--format",
            "amazon2018",
            "--teacher",
            "offline",
            "--out",
            str(out),
            "--limit",
            str(limit),
        ]
    )
    if code:
        raise SystemExit(f"build-cot failed with exit code {code}")
    return out


@torch.no_grad()
def heldout_nll(gen: PersonalizedGenerator, rows: list[dict], ads: dict, vecs: np.ndarray) -> float:
    """Mean NLL per title token of the teacher's titles, teacher-forced, with the given vectors."""
    total, count = 0.0, 0
    gen.model.eval()
    for row, vec in zip(rows, vecs, strict=True):
        p, c = gen.prompt_ids(ads[row["ad_id"]]), gen.completion_ids(row["response"])
        ids = torch.tensor([p + c])
        logits = gen.model(input_ids=ids, user_emb=torch.tensor(vec[None], dtype=torch.float32)).logits
        logp = torch.log_softmax(logits[0, len(p) - 1 : -1].float(), -1).gather(-1, torch.tensor(c)[:, None])
        total -= float(logp.sum())
        count += len(c)
    return total / max(count, 1)


def chrf(hyps: list[str], refs: list[str]) -> float:
    from sacrebleu.metrics import CHRF

    return round(CHRF().corpus_score(hyps, [refs]).score, 2)


def fact_failures(titles: list[str], ads: list[Any]) -> list[set[str]]:
    """Per title, the guard's fact rules it breaks (raw output, no guard applied)."""
    from creator.guard.check import Guard

    guard = Guard()
    return [{f.rule for f in guard.check(t, a, original_title=a.title).failures} & (FACT_RULES | {"empty"})
            for t, a in zip(titles, ads, strict=True)]


def fail_rate(fails: list[set[str]]) -> float:
    """Share of titles breaking at least one fact rule (``fails`` from ``fact_failures``)."""
    return sum(bool(f) for f in fails) / max(len(fails), 1)


def rule_counts(fails: list[set[str]]) -> dict[str, int]:
    """How many titles break each fact rule (a title may break several)."""
    counts: dict[str, int] = {}
    for rules in fails:
        for rule in rules:
            counts[rule] = counts.get(rule, 0) + 1
    return dict(sorted(counts.items()))


def guard_pass_rate(titles: list[str], ads: list[Any]) -> float:
    """Share of titles the full guard passes (every rule, length and repetition included)."""
    from creator.guard.check import Guard

    guard = Guard()
    return round(sum(guard.check(t, a, original_title=a.title).passed for t, a in zip(titles, ads, strict=True))
                 / max(len(titles), 1), 3)


def judge_win_rate(reward_dir: str | None, users: list[Any], titles: list[str], baseline: list[str],
                   ads: list[Any]) -> Any:
    """Good/Same/Bad and Adv of ``titles`` against ``baseline`` per (user, ad), judged by the reward model."""
    if not reward_dir:
        return None
    from eval.judge import compare

    res = compare(_judge(reward_dir), users, titles, baseline, ads)
    return {"good": res.good, "same": res.same, "bad": res.bad, "n": res.n, "adv": res.adv}


def history_means(users: list[Any], encoder: Any) -> np.ndarray:
    """(N, d): the normalised mean MiniLM vector of each user's history."""
    means = np.stack([encoder.encode([h.title for h in u.history]).mean(0) for u in users])
    return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-8)


def history_similarity(means: np.ndarray, titles: list[str], encoder: Any) -> np.ndarray:
    """Per row: cosine of the title's MiniLM vector and its user's history mean (``history_means``)."""
    return (encoder.encode(titles) * means).sum(1)


def paired_ci(diff: np.ndarray, n_boot: int = 2000, seed: int = 0) -> list[float]:
    """Mean of a paired difference and its 95% bootstrap interval."""
    rng = np.random.default_rng(seed)
    boots = [float(diff[rng.integers(0, len(diff), len(diff))].mean()) for _ in range(n_boot)]
    return [round(float(diff.mean()), 4), round(float(np.percentile(boots, 2.5)), 4),
            round(float(np.percentile(boots, 97.5)), 4)]


_JUDGES: dict[str, Any] = {}


def _judge(reward_dir: str) -> Any:
    from creator.reward.model import RewardModel

    if reward_dir not in _JUDGES:
        _JUDGES[reward_dir] = RewardModel.from_pretrained(reward_dir)
    return _JUDGES[reward_dir]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default="../shared/data", help="shared data folder (amazon_office_products inside)"
    )
    ap.add_argument("--cot", help="build-cot output folder (cot.parquet + pairs.parquet)")
    ap.add_argument("--cot-limit", type=int, default=1000)
    ap.add_argument("--user-vectors", default="mean-minilm")
    ap.add_argument("--reward", help="reward model folder for the judge hook")
    ap.add_argument("--out", default="runs/bench-generator")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pretrain-steps", type=int, default=250)
    ap.add_argument("--sft-epochs", type=float, default=2.0)
    ap.add_argument("--dpo-epochs", type=float, default=1.0)
    ap.add_argument("--eval-rows", type=int, default=80)
    ap.add_argument("--stages", default="pretrain,sft,dpo,eval")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    stages = set(args.stages.split(","))
    needs_cot = bool(stages & {"sft", "dpo", "eval"})
    cot = Path(args.cot) if args.cot else build_cot(data, out / "cot", args.cot_limit) if needs_cot else None
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, load avg at start {os.getloadavg()[0]:.1f}"
    }
    cfg_dir = Path(__file__).resolve().parents[1] / "training" / "configs"

    from training import dpo, pretrain_lm, sft
    from training.dpo import DPORunConfig
    from training.pretrain_lm import PretrainConfig
    from training.sft import SFTRunConfig

    if "pretrain" in stages:
        cfg = load(
            PretrainConfig,
            cfg_dir / "pretrain_tiny.yaml",
            catalog=str(data / "amazon_office_products"),
            catalog_format="amazon2018",
            out=str(out / "lm"),
            max_steps=args.pretrain_steps,
        )
        results["pretrain"] = pretrain_lm.run(cfg)
    if "sft" in stages:
        cfg = load(
            SFTRunConfig,
            cfg_dir / "sft_tiny.yaml",
            cot=str(cot),
            user_vectors=args.user_vectors,
            base=str(out / "lm"),
            out=str(out / "sft"),
            num_train_epochs=args.sft_epochs,
            catalog=str(data / "amazon_office_products"),
            catalog_format="amazon2018",
        )
        results["sft"] = sft.run(cfg)
    if "dpo" in stages:
        cfg = load(
            DPORunConfig,
            cfg_dir / "dpo_tiny.yaml",
            pairs=str(cot),
            cot=str(cot),
            user_vectors=args.user_vectors,
            sft=str(out / "sft"),
            out=str(out / "dpo"),
            num_train_epochs=args.dpo_epochs,
            catalog=str(data / "amazon_office_products"),
            catalog_format="amazon2018",
        )
        results["dpo"] = dpo.run(cfg)
    if "eval" in stages:
        results["heldout"] = evaluate(out, cot, data, args)
    for stage in ("pretrain", "sft", "dpo"):
        if stage in results:
            results[stage].pop("log_history", None)
    previous = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else {}
    results = {**previous, **results}  # stages may run in separate invocations
    (out / "bench.json").write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    return 0


def evaluate(out: Path, cot: Path, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    from creator.io import load_catalog
    from creator.modeling.user_vectors import load_user_vectors
    from training.cot_data import load_training_data

    catalog = load_catalog(data / "amazon_office_products", "amazon2018")
    test = load_training_data(cot, split="test", catalog=catalog, max_rows=args.eval_rows)
    model_dir = out / "dpo" if (out / "dpo" / "generator_config.json").exists() else out / "sft"
    gen = PersonalizedGenerator.from_pretrained(model_dir)
    users = [test.users[r["user_id"]] for r in test.rows]
    table = load_user_vectors(args.user_vectors, list(test.users.values()))
    own = np.stack([table[r["user_id"]] for r in test.rows])
    rng = np.random.default_rng(0)
    other = own[rng.permutation(len(own))]
    zero = np.zeros_like(own)
    res: dict[str, Any] = {"model": model_dir.name, "rows": len(test.rows)}
    res["nll_own_vector"] = round(heldout_nll(gen, test.rows, test.ads, own), 4)
    res["nll_shuffled_vector"] = round(heldout_nll(gen, test.rows, test.ads, other), 4)
    res["nll_zero_vector"] = round(heldout_nll(gen, test.rows, test.ads, zero), 4)
    ads = [test.ads[r["ad_id"]] for r in test.rows]
    greedy = SamplingConfig(greedy=True, max_new_tokens=40)
    share = gen.config.min_topic_share  # the model's own setting (the guard's topic share by default)
    gen.config.grounded = False  # first the raw model: what the LM writes with an open vocabulary
    open_titles = [t[0] for t in gen.generate(ads, own, greedy)]
    gen.config.grounded, gen.config.min_topic_share = True, 0.0  # grounded words, but titles may end off topic
    no_topic_titles = [t[0] for t in gen.generate(ads, own, greedy)]
    gen.config.min_topic_share = share  # then grounded decoding as the model ships
    t0 = time.perf_counter()
    titles = [t[0] for t in gen.generate(ads, own, greedy)]
    res["generate_seconds_per_title"] = round((time.perf_counter() - t0) / len(ads), 3)
    titles_zero = [t[0] for t in gen.generate(ads, zero, greedy)]
    titles_other = [t[0] for t in gen.generate(ads, other, greedy)]
    refs = [r["response"] for r in test.rows]
    res["chrf_own_vector"], res["chrf_zero_vector"] = chrf(titles, refs), chrf(titles_zero, refs)
    res["chrf_open_vocabulary"] = chrf(open_titles, refs)
    res["chrf_original_title"] = chrf([a.title for a in ads], refs)
    res["differs_from_zero_vector"] = round(
        float(np.mean([a != b for a, b in zip(titles, titles_zero, strict=True)])), 3
    )
    res["differs_from_other_users_vector"] = round(
        float(np.mean([a != b for a, b in zip(titles, titles_other, strict=True)])), 3
    )
    fails = fact_failures(titles, ads)
    no_topic_fails = fact_failures(no_topic_titles, ads)
    res["fact_fail_rate_open_vocabulary"] = fail_rate(fact_failures(open_titles, ads))
    res["fact_fail_rate_grounded_without_topic_rule"] = fail_rate(no_topic_fails)
    res["fact_fail_rules_grounded_without_topic_rule"] = rule_counts(no_topic_fails)
    res["fact_fail_rate_before_guard"] = fail_rate(fails)
    res["fact_fail_rules_before_guard"] = rule_counts(fails)
    res["chrf_grounded_without_topic_rule"] = chrf(no_topic_titles, refs)
    res["mean_words"] = round(float(np.mean([len(t.split()) for t in titles])), 2)
    res["mean_words_teacher"] = round(float(np.mean([len(r.split()) for r in refs])), 2)
    res["fact_fail_rate_before_guard_zero_vector"] = fail_rate(fact_failures(titles_zero, ads))
    res["guard_pass_rate"] = guard_pass_rate(titles, ads)
    res["judge_vs_original"] = judge_win_rate(args.reward, users, titles, [a.title for a in ads], ads)
    res["judge_zero_vector_vs_original"] = judge_win_rate(args.reward, users, titles_zero, [a.title for a in ads], ads)
    res["judge_teacher_vs_original"] = judge_win_rate(args.reward, users, refs, [a.title for a in ads], ads)
    res["judge_own_vs_zero_vector"] = judge_win_rate(args.reward, users, titles, titles_zero, ads)
    res["judge_own_vs_other_users_vector"] = judge_win_rate(args.reward, users, titles, titles_other, ads)
    from creator.modeling.item_encoder import SentenceItemEncoder

    encoder = SentenceItemEncoder("minilm")
    means = history_means(users, encoder)
    sim_own, sim_zero, sim_other = (history_similarity(means, t, encoder) for t in (titles, titles_zero, titles_other))
    res["history_similarity_own_zero_other"] = [round(float(x.mean()), 4) for x in (sim_own, sim_zero, sim_other)]
    res["history_similarity_own_minus_zero_ci"] = paired_ci(sim_own - sim_zero)
    res["history_similarity_own_minus_other_ci"] = paired_ci(sim_own - sim_other)
    res["fact_fail_examples"] = [
        {"original": a.title, "generated": t, "rules": sorted(rules)}
        for a, t, rules in zip(ads, titles, fails, strict=True) if rules
    ][:10]
    res["examples"] = [
        {"original": a.title, "teacher": r, "generated": t, "zero_vector": z, "open_vocabulary": o}
        for a, r, t, z, o in list(zip(ads, refs, titles, titles_zero, open_titles, strict=True))[:8]
    ]
    return res


def print_table(r: dict[str, Any]) -> None:
    print(f"\nmachine: {r['machine']}")
    print(f"{'stage':<10} {'steps':>6} {'seconds':>9} {'tokens/s':>10} {'loss first -> last':>24}")
    for stage in ("pretrain", "sft", "dpo"):
        m = r.get(stage)
        if m:
            loss = f"{m.get('first_logged_loss', 0):.3f} -> {m.get('last_logged_loss', 0):.3f}"
            tps = m["tokens_per_second"] or 0
            print(f"{stage:<10} {m['steps']:>6} {m['seconds']:>9.1f} {tps:>10.0f} {loss:>24}")
    total = sum(r[s]["seconds"] for s in ("pretrain", "sft", "dpo") if s in r)
    print(f"{'chain':<10} {'':>6} {total:>9.1f}")
    h = r.get("heldout")
    if h:
        print(f"\nheld-out ({h['rows']} test rows, model {h['model']}):")
        for key in (
            "nll_own_vector",
            "nll_shuffled_vector",
            "nll_zero_vector",
            "chrf_own_vector",
            "chrf_zero_vector",
            "chrf_original_title",
            "chrf_open_vocabulary",
            "differs_from_zero_vector",
            "differs_from_other_users_vector",
            "fact_fail_rate_open_vocabulary",
            "fact_fail_rate_grounded_without_topic_rule",
            "fact_fail_rules_grounded_without_topic_rule",
            "chrf_grounded_without_topic_rule",
            "fact_fail_rate_before_guard",
            "fact_fail_rules_before_guard",
            "mean_words",
            "mean_words_teacher",
            "fact_fail_rate_before_guard_zero_vector",
            "guard_pass_rate",
            "judge_vs_original",
            "judge_zero_vector_vs_original",
            "judge_teacher_vs_original",
            "judge_own_vs_zero_vector",
            "judge_own_vs_other_users_vector",
            "history_similarity_own_zero_other",
            "history_similarity_own_minus_zero_ci",
            "history_similarity_own_minus_other_ci",
            "generate_seconds_per_title",
        ):
            value = h.get(key)
            print(f"  {key:<42} {'n/a (no --reward given)' if value is None else value}")


if __name__ == "__main__":
    sys.exit(main())
