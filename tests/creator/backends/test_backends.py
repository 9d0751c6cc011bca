"""The transformers backend: left padding changes nothing, sampling is seeded per request, and the
decoding loop matches ``model.generate`` on a tiny random Llama built in-process."""

from __future__ import annotations

import pytest
import torch
from tiny_lm import build_model, build_tokenizer, prompt_embeds

from creator.backends import GenerationBackend, GenerationRequest, SamplingConfig, plan_batches, request_seed
from creator.backends.hf import HFBackend

PROMPTS = ["blue gel pens for students", "sticky notes", "durable stapler for busy office desk work",
           "black ink refill pack of pens for teachers and artists", "paper"]


@pytest.fixture(scope="module")
def lm():
    tok = build_tokenizer()
    return build_model(tok), tok


@pytest.fixture(scope="module")
def requests_(lm):
    model, tok = lm
    gen = torch.Generator().manual_seed(1)
    soft = torch.randn(len(PROMPTS), 2, 32, generator=gen)
    return [GenerationRequest(f"seg{i}|ad{i}", prompt_embeds(model, tok, p, soft[i]))
            for i, p in enumerate(PROMPTS)]


def test_backend_satisfies_protocol(lm):
    assert isinstance(HFBackend(*lm), GenerationBackend)


def test_greedy_batched_left_padding_equals_one_at_a_time(lm, requests_):
    greedy = SamplingConfig(greedy=True, max_new_tokens=10)
    batched = HFBackend(*lm, batch_size=5).generate(requests_, greedy)
    alone = [HFBackend(*lm, batch_size=1).generate([r], greedy)[0] for r in requests_]
    assert batched == alone
    assert any(t[0] for t in batched), "the tiny model should produce some non-empty text"


def test_greedy_matches_transformers_generate(lm, requests_):
    model, tok = lm
    mine = HFBackend(model, tok).generate(requests_, SamplingConfig(greedy=True, max_new_tokens=10))
    for req, texts in zip(requests_, mine, strict=True):
        emb = req.prompt_embeds[None]
        ids = model.generate(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long),
                             max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
        ref = ids[0].tolist()
        ref = ref[:ref.index(tok.eos_token_id)] if tok.eos_token_id in ref else ref
        assert texts[0] == tok.decode(ref, skip_special_tokens=True).strip()


def test_sampling_is_seeded_per_request_not_per_batch(lm, requests_):
    s = SamplingConfig(n=3, seed=11, max_new_tokens=8)
    full = HFBackend(*lm, batch_size=2).generate(requests_, s)
    assert HFBackend(*lm, batch_size=4).generate(requests_, s) == full  # other batch-mates, same texts
    assert HFBackend(*lm).generate(requests_[3:4], s)[0] == full[3]      # alone, same texts
    other = HFBackend(*lm, batch_size=2).generate(requests_, SamplingConfig(n=3, seed=12, max_new_tokens=8))
    assert other != full
    assert all(len(c) == 3 for c in full)
    assert len({t for c in full for t in c}) > len(full), "candidates of one request should differ"


def test_top_k_one_is_greedy(lm, requests_):
    greedy = HFBackend(*lm).generate(requests_, SamplingConfig(greedy=True, max_new_tokens=6))
    top1 = HFBackend(*lm).generate(requests_, SamplingConfig(top_k=1, max_new_tokens=6, seed=3))
    assert top1 == greedy


def test_plan_batches_groups_by_length_and_covers_every_request(requests_):
    plan = plan_batches(requests_, 2)
    assert sorted(i for b in plan for i in b) == list(range(len(requests_)))
    lengths = [requests_[i].prompt_embeds.shape[0] for b in plan for i in b]
    assert lengths == sorted(lengths)
    assert request_seed(0, "a", 0) != request_seed(0, "a", 1) != request_seed(1, "a", 0)


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="greedy=True"):
        SamplingConfig(temperature=0)
    with pytest.raises(ValueError, match=r"\(T, H\)"):
        GenerationRequest("k", torch.zeros(3))
