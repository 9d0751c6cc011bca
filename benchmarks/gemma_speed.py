"""Benchmark: where a LoRA SFT step and title generation spend their time on a CPU, for a base LM.

    python benchmarks/gemma_speed.py --base gemma-270m --batch 8 --steps 3
    python benchmarks/gemma_speed.py --base runs/quickstart/artifacts/lm     # the micro LM, same table

One run prints, side by side on the same rows of the bundled sample (the generator's real prompt, the
ad's title as the completion, a random unit user vector):
- SFT step (forward + backward + AdamW on LoRA r16 on every projection and the projector), TRL's fused
  LM head with every position projected vs only the completion positions (``training.completion_logits``),
  and the share of the step the LM head takes (measured by running the backbone alone);
- generation: titles/s with grounded decoding (the ad's words only) at batch 1 and at ``--gen-batch``,
  4 candidates per prompt sharing one prompt pass (``creator.backends.hf``).
The machine (cores, torch threads, load average before and after) is printed with the table: on a shared
box the ratios in one run are the thing to read, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]


def load_rows(n: int):
    from creator.io import load_catalog

    catalog = load_catalog(REPO / "examples" / "office_products_sample")
    ads = [a for a in catalog.ads.values() if a.selling_points][:n]
    return ads


def build(base: str, d_user: int = 64):
    from training.sft import SFTRunConfig, build_generator

    run = SFTRunConfig(base=base, cot="-", user_vectors="-", lora_r=16, lora_alpha=32, lora_dropout=0.0,
                       recon_weight=0.0, align_weight=0.0)
    gen, model = build_generator(run, d_user, None)
    return gen, model


def sft_batches(gen, ads, batch: int, steps: int, d_user: int):
    from training.collators import UserSFTCollator, sft_example

    rng = np.random.default_rng(0)
    collate = UserSFTCollator(gen.tokenizer.pad_token_id)
    out = []
    for s in range(steps):
        rows = []
        for ad in ads[s * batch:(s + 1) * batch]:
            v = rng.normal(size=d_user)
            rows.append(sft_example(gen, ad, ad.title, v / np.linalg.norm(v), max_length=1024))
        out.append(collate(rows))
    return out


def time_sft(model, batches, compact: bool) -> tuple[float, float]:
    """Median seconds per step, and the median seconds of the backbone forward+backward alone."""
    from trl.trainer import utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    original = trl_utils._use_triton
    if compact:
        trl_utils._use_triton = lambda device: True  # the switch training.completion_logits flips on the CPU
    base = model.get_base_model()
    if not getattr(base, "_bench_fused", False):
        add_fused_lm_head(base)
        base._bench_fused = True
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    step_s, body_s = [], []
    try:
        for b in batches:
            t0 = time.perf_counter()
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"],
                        user_emb=b["user_emb"], fused_lm_head=True)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hidden = base.base_model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                                     user_emb=b["user_emb"], use_cache=False).last_hidden_state
            hidden.float().pow(2).mean().backward()
            opt.zero_grad(set_to_none=True)
            body_s.append(time.perf_counter() - t0)
    finally:
        trl_utils._use_triton = original
    return statistics.median(step_s[1:] or step_s), statistics.median(body_s[1:] or body_s)


def time_generation(gen, ads, batch: int, n: int, d_user: int) -> tuple[float, list[str]]:
    from creator.backends.base import GenerationRequest, SamplingConfig
    from creator.backends.hf import HFBackend

    rng = np.random.default_rng(1)
    backend = HFBackend.from_generator(gen, batch_size=batch)
    reqs = []
    for ad in ads:
        v = rng.normal(size=d_user)
        reqs.append(GenerationRequest(ad.ad_id, gen.prompt_embeds(ad, v / np.linalg.norm(v)),
                                      grounding=gen.grounding(ad)))
    t0 = time.perf_counter()
    texts = backend.generate(reqs, SamplingConfig(n=n, seed=0, max_new_tokens=32))
    seconds = time.perf_counter() - t0
    return len(reqs) * n / seconds, [t[0] for t in texts]


def show_trained(args: argparse.Namespace, load0: float) -> int:
    """Titles/s and the titles of a trained generator (greedy and sampled), beside the original titles."""
    from creator.backends import hf
    from creator.modeling.generator import PersonalizedGenerator

    gen = PersonalizedGenerator.from_pretrained(args.generator)
    ads = load_rows(args.gen_prompts)
    rates: dict[str, float] = {}
    titles: list[str] = []
    for label, min_vocab in (("full LM head", 10**12), ("allowed tokens only", hf.SUBSET_HEAD_MIN_VOCAB)):
        hf.SUBSET_HEAD_MIN_VOCAB = min_vocab
        rates[label], got = time_generation(gen, ads, args.gen_batch, args.candidates, gen.config.d_user)
        titles = titles or got
        if got != titles:
            print(f"warning: the {label} path wrote other titles than the full head")
    rate = rates["allowed tokens only"]
    print("\n| grounded decoding, LM head over | titles/s |\n|---|---|")
    for label, r in rates.items():
        print(f"| {label} | {r:.2f} |")
    print(f"\ngenerator {args.generator} (base {gen.config.base}), {torch.get_num_threads()} threads, load average "
          f"{load0:.1f} before / {os.getloadavg()[0]:.1f} after: {rate:.2f} titles/s at batch {args.gen_batch} "
          f"prompts x {args.candidates} candidates (random unit user vectors)")
    for ad, t in zip(ads, titles, strict=True):
        print(f"  {ad.title!r}\n    -> {t!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="gemma-270m")
    p.add_argument("--batch", type=int, default=8, help="SFT rows per step")
    p.add_argument("--steps", type=int, default=3, help="timed SFT steps per mode (the first is a warm-up)")
    p.add_argument("--gen-batch", type=int, default=16, help="prompts per generation batch")
    p.add_argument("--gen-prompts", type=int, default=16)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--generator", help="a trained generator folder (hllm-creator sft --out): time and show its "
                                       "titles instead of training steps on a fresh adapter")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    if args.generator:
        return show_trained(args, load0)
    d_user = 64
    gen, model = build(args.base, d_user)
    ads = load_rows(max(args.batch * args.steps, args.gen_prompts))
    batches = sft_batches(gen, ads, args.batch, args.steps, d_user)
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    completion = [int((b["labels"][:, 1:] != -100).sum()) for b in batches]
    model.train()
    full, body = time_sft(model, batches, compact=False)
    compact, _ = time_sft(model, batches, compact=True)
    model.eval()
    rate1, _ = time_generation(gen, ads[:4], 1, args.candidates, d_user)
    rate_b, titles = time_generation(gen, ads[:args.gen_prompts], args.gen_batch, args.candidates, d_user)
    load1 = os.getloadavg()[0]
    n_params = sum(p.numel() for p in model.get_base_model().parameters()) / 1e6
    print(f"\nbase {args.base} ({n_params:.0f}M parameters), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"load average {load0:.1f} before / {load1:.1f} after")
    print(f"SFT batch {args.batch}: {statistics.mean(tokens) / args.batch:.0f} tokens a row, "
          f"{statistics.mean(completion) / args.batch:.0f} of them completion\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| SFT step, every position through the LM head | {full:.2f} s |")
    print(f"| SFT step, completion positions only | {compact:.2f} s ({full / compact:.2f}x faster) |")
    print(f"| backbone alone (forward + backward) | {body:.2f} s ({body / compact:.0%} of the compact step) |")
    print(f"| completion tokens/s (compact) | {statistics.mean(completion) / compact:.0f} |")
    print(f"| titles/s, batch 1, {args.candidates} candidates a prompt | {rate1:.2f} |")
    print(f"| titles/s, batch {args.gen_batch}, {args.candidates} candidates a prompt | {rate_b:.2f} |")
    print("\nfirst titles (untrained adapter and projector: the stock base under grounded decoding):")
    for ad, t in list(zip(ads, titles, strict=False))[:5]:
        print(f"  {ad.title[:70]!r}\n    -> {t!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
