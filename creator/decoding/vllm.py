"""Grounded decoding inside vLLM: ``creator.decoding.words.WordConstraint`` per request, as a vLLM logits processor.

vLLM has no per-request ``LogitsProcessor`` objects in its V1 engine; it takes logits-processor *classes* at
engine start (``LLM(..., logits_processors=[WordGroundingProcessor])``, or the name
``"creator.decoding.vllm:WordGroundingProcessor"`` for ``vllm serve --logits-processors``) and
hands each request's ``SamplingParams`` to them. A request asks for grounding with
``SamplingParams(extra_args={"hllm_grounding": vocab.spec})``: plain data (the ad's title, brand, selling
points, connectives and topic share), so it crosses process boundaries; the processor rebuilds the
``AdVocabulary`` with the engine's tokenizer (cached per ad) and runs the same word trie, span, topic and
loop rules as the transformers backend. Greedy titles then match the transformers backend token for token
(opt-in test, marker ``vllm``). This module imports vllm: only the vLLM backend loads it.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from creator.decoding.logits import RowConstraint
from creator.decoding.words import AdVocabulary, WordConstraint

GROUNDING_KEY = "hllm_grounding"


class WordGroundingProcessor(AdapterLogitsProcessor):
    """Applies ``WordConstraint`` to every request whose ``extra_args`` carry ``hllm_grounding``."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        super().__init__(vllm_config, device, is_pin_memory)
        from transformers import AutoTokenizer

        mc = vllm_config.model_config
        self.tokenizer = AutoTokenizer.from_pretrained(mc.tokenizer, trust_remote_code=mc.trust_remote_code)
        self.vocabs: dict[str, AdVocabulary] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # it masks tokens, so greedy choices change

    def new_req_logits_processor(self, params: Any) -> RowConstraint | None:
        spec = (params.extra_args or {}).get(GROUNDING_KEY)
        if spec is None:
            return None
        key = json.dumps(spec, sort_keys=True)
        if key not in self.vocabs:
            self.vocabs[key] = AdVocabulary.from_spec(self.tokenizer, spec)
        return RowConstraint(WordConstraint(self.vocabs[key]))
