"""Fixtures of the generator world: CoT rows of the build-cot schema, user vectors, DPO pairs, a tiny base.

Everything the SFT and DPO entry points read, built once per session, plus the SFT config that trains on it and
a tiny untrained generator. Used by ``tests/creator/modeling`` and ``tests/training``; registered in
``tests/conftest.py``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

D_USER = 8
INTERESTS = ["students", "offices", "artists"]
GENERATOR_ADS = [
    ("a1", "Gel Pens, 12 Colors", "Smooth ink that dries fast. Pack of 12 pens in bright colors."),
    ("a2", "Heavy Duty Stapler, 20 Sheets", "Staples up to 20 sheets. Metal body built to last."),
    ("a3", "Sticky Notes, 3 x 3 in, 24 Pads", "24 pads of sticky notes. Strong adhesive, easy to peel."),
    ("a4", "Spiral Notebook, 100 Pages", "College ruled notebook with 100 pages and a sturdy cover."),
]


def cot_rows(n_users: int = 12) -> list[dict]:
    """Teacher rows of the build-cot schema (docs/cot.md): each user has one interest; the last two validate."""
    rows = []
    for u in range(n_users):
        interest = INTERESTS[u % 3]
        split = "validation" if u >= n_users - 2 else "train"
        for ad_id, title, desc in GENERATOR_ADS:
            rows.append(
                {
                    "user_id": f"u{u}",
                    "ad_id": ad_id,
                    "split": split,
                    "user_profile": json.dumps({"Long-term Interest": interest}),
                    "profile": json.dumps({"Long-term Interest": interest, "Preference": f"likes {interest} things"}),
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
    """Unit vectors near one of three centres, by the user's interest; fixed seed."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, D_USER))
    out = {}
    for u in range(n_users):
        v = centers[u % 3] + 0.05 * rng.normal(size=D_USER)
        out[f"u{u}"] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


def pair_rows(rows: list[dict]) -> list[dict]:
    """chosen = the teacher's title; rejected = the same title with an invented count (a fact error)."""
    return [
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
        for r in rows
    ]


def write_generator_world(d: Path) -> Path:
    """Everything the SFT and DPO entry points read: ``cot.parquet``, ``pairs.parquet``, ``vecs.npz`` (vectors
    keyed by user id) and ``base/`` (an untrained tiny base with a tokenizer trained on the rows)."""
    from creator.io.hllm import write_hllm_parquet
    from creator.io.records import write_records
    from creator.modeling.builders import build_tiny_lm, train_tokenizer

    rows = cot_rows()
    write_hllm_parquet(rows, d / "cot.parquet")
    write_records(pair_rows(rows), d / "pairs.parquet")
    vecs = user_vectors()
    np.savez(d / "vecs.npz", user_ids=np.array(list(vecs)), vectors=np.stack(list(vecs.values())))
    corpus = [r["response"] for r in rows] + [r["original_description"] for r in rows] + [r["profile"] for r in rows]
    tok = train_tokenizer(corpus * 3, vocab_size=400)
    model = build_tiny_lm(tok, "test")
    model.save_pretrained(d / "base")
    tok.save_pretrained(d / "base")
    return d


@pytest.fixture(scope="session")
def generator_world(tmp_path_factory) -> Path:
    """The generator world's folder, built once per session. Read it only: runs go in ``generator_workdir``."""
    return write_generator_world(tmp_path_factory.mktemp("generator-world"))


@pytest.fixture(scope="module")
def generator_workdir(generator_world, tmp_path_factory) -> Path:
    """A copy of the generator world the test module may write its runs into (``sft/``, ``dpo/``, ...)."""
    return Path(shutil.copytree(generator_world, tmp_path_factory.mktemp("generator-work"), dirs_exist_ok=True))


@pytest.fixture
def generator_d_user() -> int:
    """The width of the world's user vectors."""
    return D_USER


@pytest.fixture(scope="session")
def generator_cot_rows() -> list[dict]:
    """The CoT rows written to ``cot.parquet`` (shared: read them only)."""
    return cot_rows()


@pytest.fixture
def generator_user_vectors() -> dict[str, np.ndarray]:
    """The user vectors written to ``vecs.npz``, by user id (``u0`` ... ``u11``)."""
    return user_vectors()


@pytest.fixture
def generator_ad_rows() -> list[tuple[str, str, str]]:
    """The world's four ads as raw ``(ad_id, title, description)`` rows."""
    return list(GENERATOR_ADS)


@pytest.fixture
def generator_ads() -> list:
    """The world's four ads as ``Ad`` records, built by the catalog's ``build_ad`` (facts, selling points)."""
    from creator.io.catalog import build_ad

    return [build_ad(ad_id, title, [desc]) for ad_id, title, desc in GENERATOR_ADS]


@pytest.fixture(scope="session")
def sft_config() -> Callable[..., object]:
    """``sft_config(work, **overrides)``: a 10-step LoRA SFT run with every aux loss on, reading the world in
    ``work`` and writing ``work/sft``; keyword overrides win."""
    from training.sft import SFTRunConfig

    def config(work: Path, **kw):
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

    return config


@pytest.fixture
def tiny_generator():
    """An untrained ``PersonalizedGenerator`` (tiny Llama, 2 user tokens from 8-d vectors), fresh per test."""
    import torch

    from creator.modeling.builders import build_tiny_lm, train_tokenizer
    from creator.modeling.generator import GeneratorConfig, PersonalizedGenerator
    from creator.modeling.soft_prompt import UserProjector

    tok = train_tokenizer([r["response"] for r in cot_rows(3)] * 20, vocab_size=320)
    model = build_tiny_lm(tok, "test")
    torch.manual_seed(1)
    projector = UserProjector(D_USER, model.config.hidden_size, 2, init_std=0.05)
    return PersonalizedGenerator(model, tok, projector, GeneratorConfig(d_user=D_USER, num_user_tokens=2))
