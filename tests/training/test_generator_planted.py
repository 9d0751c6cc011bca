"""Planted users: the user vector alone must carry which selling point a user favours into the title.

A world of four ads, each with two selling points, one for each of two kinds of user (crafters, offices). The
teacher's title for a user is the ad's title with the point of their kind; the prompt holds only the ad, so
the kind reaches the model through the user vector (soft tokens) alone. After LoRA SFT of a tiny LM, greedy
titles for held-out users (new vectors near their kind's centre) must carry their own kind's point more often
than the other kind's: counted, per kind.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D_USER = 8
KINDS = ("crafters", "offices")
# (ad id, title, point for crafters, point for offices)
ADS = [
    ("p1", "Gel Pens, 12 Colors", "bright colors for art journals", "quick drying ink for meeting notes"),
    ("p2", "Heavy Duty Stapler", "binds thick scrapbook pages", "staples reports of twenty sheets"),
    ("p3", "Sticky Notes, 24 Pads", "pastel pads for collage work", "strong adhesive for desk reminders"),
    ("p4", "Spiral Notebook", "heavy paper for sketching", "ruled pages for meeting minutes"),
]


def centres() -> np.ndarray:
    c = np.random.default_rng(0).normal(size=(len(KINDS), D_USER))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def vectors(kind: int, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors near the centre of ``kind``."""
    v = centres()[kind] + 0.1 * np.random.default_rng(seed).normal(size=(n, D_USER))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def rows(n_per_kind: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    out, vecs = [], {}
    for k, kind in enumerate(KINDS):
        for i, vec in enumerate(vectors(k, n_per_kind, seed=10 + k)):
            uid = f"{kind}{i}"
            vecs[uid] = vec
            for ad_id, title, *points in ADS:
                out.append({"user_id": uid, "ad_id": ad_id, "split": "train",
                            "user_profile": json.dumps({"Long-term Interest": kind}),
                            "profile": json.dumps({"Long-term Interest": kind}),
                            "original_title": title, "original_description": ". ".join(points) + ".",
                            "prompt1": "", "prompt2": "", "response": f"{title} - {points[k]}",
                            "title_list": [], "item_id_list": [], "suitable_user_info": kind,
                            "selling_points_used": [points[k]], "verdict": "{}", "teacher": "planted"})
    return out, vecs


def pretrain(model, tok, texts: list[str], steps: int = 60) -> None:
    """Plain causal-LM training on ``texts`` (both points of every ad), as pretrain-lm gives the micro LM a base."""
    import torch

    texts = sorted(set(texts))
    ids = [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"], tok.eos_token_id] for t in texts]
    width = max(map(len, ids))
    x = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in ids])
    labels = torch.where(x == tok.pad_token_id, -100, x)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=x, attention_mask=(labels != -100).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from creator.io.hllm import write_hllm_parquet
    from creator.modeling.builders import build_tiny_lm, train_tokenizer
    from creator.modeling.generator import PersonalizedGenerator
    from training.sft import SFTRunConfig, run

    work = tmp_path_factory.mktemp("planted")
    cot, vecs = rows(n_per_kind=8)
    write_hllm_parquet(cot, work / "cot.parquet")
    np.savez(work / "vecs.npz", user_ids=np.array(list(vecs)), vectors=np.stack(list(vecs.values())))
    tok = train_tokenizer([r["response"] for r in cot] * 3 + [r["original_description"] for r in cot],
                          vocab_size=300)
    base = build_tiny_lm(tok, "test")
    pretrain(base, tok, [r["response"] for r in cot])  # a base that knows the titles, not who wants which
    base.save_pretrained(work / "base")
    tok.save_pretrained(work / "base")
    run(SFTRunConfig(cot=str(work / "cot.parquet"), user_vectors=str(work / "vecs.npz"), base=str(work / "base"),
                     out=str(work / "sft"), max_steps=150, per_device_train_batch_size=8, learning_rate=5e-3,
                     logging_steps=10, save_steps=1000, lora_r=8, lora_alpha=16, lora_dropout=0.0, recon_weight=0.0,
                     align_weight=0.0, match_weight=0.0, max_profile_tokens=16, warmup_steps=0.0,
                     ))
    return PersonalizedGenerator.from_pretrained(work / "sft")


def test_held_out_users_get_the_selling_point_of_their_kind(trained):
    from creator.io.catalog import build_ad
    from creator.modeling.generator import SamplingConfig

    ads = [build_ad(ad_id, title, [". ".join(points) + "."]) for ad_id, title, *points in ADS]
    greedy = SamplingConfig(greedy=True, max_new_tokens=48)
    for k, kind in enumerate(KINDS):
        users = vectors(k, 3, seed=99 + k)  # held out: vectors no training row had
        titles = [t[0].lower() for vec in users for t in trained.generate(ads, np.repeat(vec[None], len(ads), 0),
                                                                           greedy)]
        own = sum(points[k] in t for t, (_, _, *points) in zip(titles, ADS * len(users), strict=True))
        other = sum(points[1 - k] in t for t, (_, _, *points) in zip(titles, ADS * len(users), strict=True))
        assert own >= 0.75 * len(titles) and own > other, (kind, own, other, titles)
