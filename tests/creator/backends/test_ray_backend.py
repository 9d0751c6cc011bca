"""Ray Data in local mode gives exactly the single-process output (one small run: ray init is slow)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest
import torch
from tiny_lm import build_model, build_tokenizer, prompt_embeds

from creator.backends.base import GenerationRequest, SamplingConfig
from creator.backends.hf import HFBackend

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[3]


def tiny_backend(batch_size: int) -> HFBackend:
    tok = build_tokenizer()
    return HFBackend(build_model(tok), tok, batch_size=batch_size)


def test_ray_output_equals_single_process(monkeypatch):
    from creator.backends.ray import RayBackend

    tok = build_tokenizer()
    model = build_model(tok)
    gen = torch.Generator().manual_seed(0)
    texts = ["blue gel pens", "sticky notes for teachers", "stapler", "black ink refill pack for office desk",
             "paper", "clips and binder clips", "marker"]
    soft = torch.randn(len(texts), 2, 32, generator=gen)
    requests = [GenerationRequest(f"{i}|ad{i}", prompt_embeds(model, tok, t, soft[i]))
                for i, t in enumerate(texts)]
    sampling = SamplingConfig(n=2, seed=3, max_new_tokens=6)
    single = HFBackend(model, tok, batch_size=3).generate(requests, sampling)
    # 4 logical CPUs on a 2-core box, so the two actors never starve Ray Data's own tasks of a slot
    # (workers inherit the environment: PYTHONPATH lets them import creator and tiny_lm)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(REPO / "tests"), *sys.path]))
    backend = RayBackend(functools.partial(tiny_backend, 3), num_actors=2, batch_size=3,
                         init_kwargs={"num_cpus": 4})
    try:
        assert backend.generate(requests, sampling) == single
    finally:
        ray.shutdown()
