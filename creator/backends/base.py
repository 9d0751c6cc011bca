"""What every generation backend shares: the sampling settings, the request and the Protocol.

A request is a key plus the prompt as embeddings (``(T, H)``: ``embed_tokens(ids)`` with the user
placeholders replaced by projected user vectors, exactly as in training). Backends never see users
or ads, only embeddings, so the transformers, vLLM and Ray paths are interchangeable.

    >>> s = SamplingConfig(n=2, seed=7)
    >>> request_seed(s.seed, "seg3|ad9", 0) == request_seed(7, "seg3|ad9", 0)
    True

Sampling is seeded **per request and candidate** (from ``seed`` and the request key), never from a
global RNG, so a request's output does not depend on which other requests share its batch, which
shard it ran in, or which Ray actor ran it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from creator.decoding.words import AdVocabulary


@dataclass(frozen=True)
class SamplingConfig:
    """How to decode: ``n`` candidates per request; ``greedy`` ignores temperature/top-p/top-k."""

    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 50
    max_new_tokens: int = 48
    seed: int = 0
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"SamplingConfig.n must be >= 1, got {self.n}; ask for at least one candidate")
        if self.greedy and self.n > 1:
            raise ValueError(f"greedy decoding gives {self.n} identical candidates; set n=1 or greedy=False")
        if not self.greedy and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}; "
                             "use greedy=True for deterministic argmax decoding")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}; 1.0 disables nucleus sampling")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class GenerationRequest:
    """One prompt to complete: ``key`` names it (e.g. ``"seg12|B00ABC"``), ``prompt_embeds`` is ``(T, H)``.

    ``grounding``: when set, the words the completion may use (``creator.decoding.words.AdVocabulary``, grounded
    decoding); None leaves the vocabulary open.
    """

    key: str
    prompt_embeds: torch.Tensor
    grounding: AdVocabulary | None = None

    def __post_init__(self) -> None:
        if self.prompt_embeds.dim() != 2 or self.prompt_embeds.shape[0] < 1:
            raise ValueError(
                f"request {self.key!r}: prompt_embeds must be (T, H) with T >= 1, got shape "
                f"{tuple(self.prompt_embeds.shape)}; build it with PersonalizedGenerator.prompt_embeds"
            )
        if self.grounding is not None and not self.grounding.spaced.children:
            raise ValueError(f"request {self.key!r}: its grounding vocabulary has no words, so nothing could be "
                             "written; pass grounding=None to leave the vocabulary open")


@runtime_checkable
class GenerationBackend(Protocol):
    """Completes requests: ``generate(requests, sampling)[i]`` is ``sampling.n`` texts for ``requests[i]``."""

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[list[str]]: ...


def request_seed(seed: int, key: str, candidate: int) -> int:
    """A 63-bit seed for one candidate of one request, stable across processes and machines."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}\x1f{candidate}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def plan_batches(requests: list[GenerationRequest], batch_size: int) -> list[list[int]]:
    """Indices of ``requests`` grouped into batches of similar length (less padding), deterministically.

    Every backend that batches uses this plan, so the same requests always meet the same batch-mates:
    the Ray path then reproduces the single-process floats exactly, not just up to rounding.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(requests)), key=lambda i: (requests[i].prompt_embeds.shape[0], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
