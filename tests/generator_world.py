"""Synthetic generator world for tests: CoT rows of the build-cot schema, user vectors, DPO pairs, a tiny base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from creator.io.hllm import write_hllm_parquet
from creator.io.records import write_records

D_USER = 8
INTERESTS = ["students", "offices", "artists"]
ADS = [
    ("a1", "Gel Pens, 12 Colors", "Smooth ink that dries fast. Pack of 12 pens in bright colors."),
    ("a2", "Heavy Duty Stapler, 20 Sheets", "Staples up to 20 sheets. Metal body built to last."),
    ("a3", "Sticky Notes, 3 x 3 in, 24 Pads", "24 pads of sticky notes. Strong adhesive, easy to peel."),
    ("a4", "Spiral Notebook, 100 Pages", "College ruled notebook with 100 pages and a sturdy cover."),
]


def cot_rows(n_users: int = 12) -> list[dict]:
    rows = []
    for u in range(n_users):
        interest = INTERESTS[u % 3]
        split = "validation" if u >= n_users - 2 else "train"
        for ad_id, title, desc in ADS:
            rows.append(
                {
                    "user_id": f"u{u}",
                    "ad_id": ad_id,
                    "split": split,
                    "user_profile": json.dumps({"Long-term Interest": interest}),
                    "profile": json.dumps(
                        {"Long-term Interest": interest, "Preference": f"likes {interest} things"}
                    ),
                    "original_title": title,
                    "original_description": desc,
                    "prompt1": "",
                    "prompt2": "",
                    "response": f"{title} for {interest.capitalize()}",
                    "title_list": [f"{interest} item {i}" for i in range(3)],
                    "item_id_list": [f"h{i}" for i in range(3)],
                    "suitable_user_info": interest,
                    "selling_points_used": [],
                    "verdict": "{}",
                    "teacher": "fake",
                }
            )
    return rows


def user_vectors(n_users: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, D_USER))
    out = {}
    for u in range(n_users):
        v = centers[u % 3] + 0.05 * rng.normal(size=D_USER)
        out[f"u{u}"] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


def pair_rows(cot_rows: list[dict]) -> list[dict]:
    """chosen = the teacher's title; rejected = the same title with an invented count (a fact error)."""
    out = []
    for r in cot_rows:
        out.append(
            {
                "user_id": r["user_id"],
                "ad_id": r["ad_id"],
                "split": r["split"],
                "prompt1": "",
                "prompt2": "",
                "original_title": r["original_title"],
                "chosen": r["response"],
                "rejected": r["response"].replace(",", ", 99 Pack,", 1) + " Best Seller",
                "chosen_score": 1.0,
                "rejected_score": 0.0,
            }
        )
    return out


def write_world(d: Path) -> Path:
    """Synthetic CoT data of the build-cot schema (docs/cot.md), pairs, vectors keyed by user id, an untrained
    tiny base: everything the SFT and DPO entry points read."""
    from creator.modeling.builders import build_tiny_lm, train_tokenizer

    rows = cot_rows()
    write_hllm_parquet(rows, d / "cot.parquet")
    write_records(pair_rows(rows), d / "pairs.parquet")
    vecs = user_vectors()
    np.savez(d / "vecs.npz", user_ids=np.array(list(vecs)), vectors=np.stack(list(vecs.values())))
    corpus = (
        [r["response"] for r in rows]
        + [r["original_description"] for r in rows]
        + [r["profile"] for r in rows]
    )
    tok = train_tokenizer(corpus * 3, vocab_size=400)
    model = build_tiny_lm(tok, "test")
    model.save_pretrained(d / "base")
    tok.save_pretrained(d / "base")
    return d


def sft_config(work: Path, **kw):
    from training.sft import SFTRunConfig

    opts = dict(
        cot=str(work / "cot.parquet"),
        user_vectors=str(work / "vecs.npz"),
        base=str(work / "base"),
        out=str(work / "sft"),
        max_steps=10,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        logging_steps=1,
        save_steps=5,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        recon_weight=0.2,
        align_weight=0.1,
        match_weight=0.1,
        max_profile_tokens=32,
        warmup_steps=0.0,
    )
    opts.update(kw)
    return SFTRunConfig(**opts)


def tiny_generator(d_user: int = D_USER, k: int = 2):
    from creator.modeling.builders import build_tiny_lm, train_tokenizer
    from creator.modeling.generator import GeneratorConfig, PersonalizedGenerator
    from creator.modeling.soft_prompt import UserProjector

    tok = train_tokenizer([r["response"] for r in cot_rows(3)] * 20, vocab_size=320)
    model = build_tiny_lm(tok, "test")
    torch.manual_seed(1)
    projector = UserProjector(d_user, model.config.hidden_size, k, init_std=0.05)
    return PersonalizedGenerator(model, tok, projector, GeneratorConfig(d_user=d_user, num_user_tokens=k))


def make_ad(i: int = 0):
    from creator.io.catalog import build_ad

    ad_id, title, desc = ADS[i]
    return build_ad(ad_id, title, [desc])
